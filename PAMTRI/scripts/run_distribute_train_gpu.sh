#!/usr/bin/env bash
# Earlier place of the model card's wrapper: forwards to MultiTaskNet/scripts/run_distribute_train_gpu.sh
# (the card's place, one shared body).
exec bash "$(dirname "${BASH_SOURCE[0]}")/../MultiTaskNet/scripts/run_distribute_train_gpu.sh" "$@"
