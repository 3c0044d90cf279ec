"""Test-session set-up shared by every test module."""

from lessons_lib.kernels import use_interpreter

# The kernel tests run Triton kernels on CPU tensors, in Triton's interpreter. The switch must be
# on before anything imports Triton, so it is set here, before any test module is collected.
use_interpreter()
