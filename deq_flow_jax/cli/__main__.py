import sys

from deq_flow_jax.cli import main

sys.exit(main())
