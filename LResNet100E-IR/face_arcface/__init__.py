"""ArcFace face recognition (TreB1eN InsightFace_Pytorch IR / IR-SE / MobileFaceNet) on faces_emore."""
