"""Pose estimation from local features for visual localization: paradigms 2a (local SfM from the top-k retrieved
mapping images) and 2b (a global map of all mapping images). It reads images, poses, intrinsics and retrieval
pairs; it knows no retrieval network."""
