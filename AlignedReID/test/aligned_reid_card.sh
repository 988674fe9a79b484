# The body the AlignedReID card scripts share (sourced by train_{full,performance,eval}_{1p,8p}.sh after
# common/scripts/testlib.sh): the README recipe's train.py and eval.py command lines and what the summaries
# grep. Each script keeps its own defaults, learning rate and checkpoint folder.

# aligned_reid_train EXP_NAME ARGS...: train.py with the card's recipe (NNF, global loss only, margin 0.3,
# Adam, exp decay from epoch 151, AMP) into test/output/<device id>/EXP_NAME; ARGS (--base_lr, --id_split)
# come before the user's own --flags. train.py alone turns --batch_size into --ids_per_batch x --ims_per_id.
aligned_reid_train() {
  local exp_name="$1"
  shift
  batch_size="$(python3 train.py --print_batch_size ${batch_size:+--batch_size="$batch_size"} \
    "${EXTRA_ARGS[@]}")" || exit 1
  zoo_run train.py --data_path="$data_path" --batch_size="$batch_size" --total_epochs="$epochs" \
    --amp "$@" --normalize_feature=false --g_loss_weight=1 --l_loss_weight=0 --id_loss_weight=0 \
    --exp_decay_at_epoch=151 --npu="$device_id" \
    --exp_dir="test/output/$ASCEND_DEVICE_ID/$exp_name" ${max_steps:+--max_steps=$max_steps} \
    ${workers:+--workers=$workers}
  # what the Ascend CI extracts (README, Scripts): FPS = mean of field 5 of the last 5 'FPS' (epoch) lines;
  # accuracy = the last cmc1 line (the card's rank-1: global distance, no re-ranking); loss = every line with
  # 'Ep' (step and epoch lines)
  zoo_summary --fps_pattern '^Ep [0-9]+, [0-9.]+s, FPS ([0-9.]+),' --fps_tail 5 \
    --acc_pattern '\[cmc1: ([0-9.]+)%' --loss_pattern '^.*Ep.* loss ([0-9.]+)$'
}

# aligned_reid_eval: eval.py on --pth_path (or zoo_default_pth_path) on device 0
aligned_reid_eval() {
  zoo_run eval.py --data_path="$data_path" --pth_path="$pth_path" --eval_batch_size="$batch_size" \
    --npu="$device_id" ${workers:+--workers=$workers}
  zoo_summary --fps_pattern 'extracted features of [0-9]+ images in [0-9.]+s: ([0-9.]+) images/sec' \
    --fps_reduce last --acc_pattern '\[cmc1: ([0-9.]+)%'
}
