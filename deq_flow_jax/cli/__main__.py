from deq_flow_jax.cli import console_main

console_main()
