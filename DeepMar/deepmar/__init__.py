"""DeepMAR (ResNet-50) pedestrian attribute recognition on PETA."""
