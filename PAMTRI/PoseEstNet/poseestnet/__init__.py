"""PoseEstNet: HRNet-W32 vehicle pose (36 keypoints) for PAMTRI, and the trans step that
turns VeRi into MultiTaskNet input (keypoints, 36 heatmaps, 13 segment masks)."""
