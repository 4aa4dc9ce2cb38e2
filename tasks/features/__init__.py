"""Frame features: streaming ffmpeg decode, batched 2D/3D encoders, the frame_features shard stage."""
