# fine-tune of TSR step 1242 onto the motion-compensated base
OMP_NUM_THREADS=1 exec taskset -c 0 vidsynth train configs/shapes-tsr-32.toml \
  --set model.init_from=runs/s14/tsr-1242 --set output_dir=runs/s14/tsr-mc \
  --set model.sr.motion_compensation=true --set model.sr.aug_max_level=0.05 --set model.sr.noise_aug_level=0.0 \
  --set train.timestep_shift=8.0 --set train.lr=5e-4 --set train.warmup=20 --set train.sample_every=0 \
  --set train.save_every=100 "$@"
