"""The paper's Fig. 1 ablation (`deq-flow ablate`): IFT vs IFT + Jacobian regularisation vs
one correction term, trained with identical seeds, data and budgets.

  settings  the three settings and what each overrides in the config
  runner    run_ablation: train every setting (in-process or parallel workers), then collect
  worker    child-process entry of a parallel run
  probe     final ||J||_F^2 and spectral radius of a trained setting
  collect   tables, figure and summary from the runs' logs

Config: `deq_flow_jax/configs/ablation.py`.
"""
