"""Label-based mA and instance-based Acc/Prec/Rec/F1, as upstream's evaluate.py."""
import numpy as np


def attribute_metrics(logits, gt):
    """`logits` [N, L] (prediction = logit >= 0), `gt` [N, L] raw labels (1 pos, 0 neg, 2 other).

    Returns a dict with label_pos_acc, label_neg_acc, label_acc (per attribute), mA,
    instance_acc, instance_precision, instance_recall, instance_F1.
    """
    pred = (np.asarray(logits) >= 0).astype(np.int64)
    gt = np.asarray(gt).astype(np.int64)
    gt_pos, gt_neg = gt == 1, gt == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        pos_acc = (gt_pos & (pred == 1)).sum(0) / gt_pos.sum(0)
        neg_acc = (gt_neg & (pred == 0)).sum(0) / gt_neg.sum(0)
    label_acc = (pos_acc + neg_acc) / 2

    p = pred == 1
    inter = (gt_pos & p).sum(1).astype(np.float64)
    union = (gt_pos | p).sum(1).astype(np.float64)
    n_gt = gt_pos.sum(1).astype(np.float64)
    n_pred = p.sum(1).astype(np.float64)
    valid = n_gt > 0                         # samples without positive GT are excluded
    cnt_eff = max(int(valid.sum()), 1)
    safe = lambda d: np.where(d == 0, 1.0, d)  # noqa: E731  empty prediction -> precision 0
    acc = np.where(valid, inter / safe(union), 0).sum() / cnt_eff
    prec = np.where(valid, inter / safe(n_pred), 0).sum() / cnt_eff
    rec = np.where(valid, inter / safe(n_gt), 0).sum() / cnt_eff
    f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    return {"label_pos_acc": pos_acc, "label_neg_acc": neg_acc, "label_acc": label_acc,
            "mA": float(np.mean(label_acc)), "instance_acc": float(acc), "instance_precision": float(prec),
            "instance_recall": float(rec), "instance_F1": float(f1)}


def format_block(result, split="test"):
    return "\n".join([
        "-" * 60,
        f"Evaluation on {split} set:",
        "Label-based evaluation: ",
        " mA: %.4f" % result["mA"],
        "Instance-based evaluation: ",
        " Acc: %.4f, Prec: %.4f, Rec: %.4f, F1: %.4f" % (
            result["instance_acc"], result["instance_precision"], result["instance_recall"], result["instance_F1"]),
        "-" * 60,
    ])
