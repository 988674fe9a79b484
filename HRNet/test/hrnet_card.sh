# The body the HRNet card scripts share (sourced by train_{full,performance,eval}_{1p,8p}.sh after
# common/scripts/testlib.sh): the W18-C config, its train.py and eval.py command lines, and what the
# summaries grep. Each script still names its own checkpoint folder (--modelDir) and its defaults.
HRNET_CFG=experiments/cls_hrnet_w18_sgd_lr5e-2_wd1e-4_bs32_x100.yaml
HRNET_ACC=(--acc_pattern '^Test: .*?Accuracy@1 ([0-9.]+)')
# training summary: Fps_Avg of the last epoch, the last `Test:` top-1, the last step line's loss
HRNET_TRAIN_SUMMARY=(--fps_pattern 'Fps_Avg ([0-9.]+)' --fps_reduce last "${HRNET_ACC[@]}"
  --loss_pattern '^Epoch: \[.*?\tLoss ([0-9.]+)')

# hrnet_train ARGS...: train.py with the card's recipe (lr 0.1 per device, AMP O2 with loss scale 128,
# loader workers nproc // devices); ARGS (--modelDir, --fresh) come before the user's own --flags
hrnet_train() {
  zoo_run train.py "$data_path" --cfg="$HRNET_CFG" --bs="$batch_size" --lr=0.1 --train_epochs="$epochs" \
    --nproc="$(nproc)" --device_id="$device_id" --amp --loss_scale=128 --print_freq=100 \
    ${max_steps:+--max_steps="$max_steps"} ${workers:+--workers="$workers"} "$@"
}

# hrnet_eval: eval.py on --pth_path (or the default of zoo_default_pth_path)
hrnet_eval() {
  zoo_run eval.py "$data_path" --cfg="$HRNET_CFG" --testModel="$pth_path" --bs="$batch_size" --nproc="$(nproc)" \
    --device_id="$device_id" --amp ${workers:+--workers="$workers"}
}

# zoo_default_pth_path for the eval scripts: final_state.pth.tar of the training script whose
# checkpoint folder is test/output/<device id>/$HRNET_TRAINED_BY (--cfg/--modelDir as given to it)
zoo_default_pth_path() {
  python3 -c 'import sys; sys.path[:0] = ["..", "."]; from hrnet_cls.config import default_weights
print(default_weights(sys.argv[2:], sys.argv[1]))' "test/output/$ASCEND_DEVICE_ID/$HRNET_TRAINED_BY" "${EXTRA_ARGS[@]}"
}
