# CUDA backend tests (included by tests/kernels/CMakeLists.txt): every CUDA op
# against the CPU op on random inputs, and the NCCL path with one rank.  They
# exit 77 (skipped) when no GPU is visible, so CPU-only CI reports them as
# skipped; scripts/gpu_check.sh runs them on a GPU machine (label "cuda").
rdt_test(NAME test_kernels_cuda_ops SOURCES cuda_ops_test.c LIBS rdt_kernels TIMEOUT 300 LABELS cuda)
if(RDT_HAVE_CUDA AND RDT_HAVE_NCCL)
  rdt_test(NAME test_kernels_cuda_nccl SOURCES cuda_nccl_test.c LIBS rdt_kernels TIMEOUT 120 LABELS cuda)
endif()
