/* MKL chooses its kernels by the CPU's vendor before its features: on AMD it runs its AVX2 paths
 * even where the CPU has AVX-512. PyTorch's float32 matrix products (linear layers, bmm) are
 * MKL's, so on an AMD CPU with AVX-512 the rival would run them half as wide as it could.
 * Preloaded (bench/torch-preload.sh), this answers MKL's vendor check, and MKL then picks by the
 * CPU's features alone: what PyTorch users on such machines do. On an Intel CPU it changes
 * nothing. */
int mkl_serv_intel_cpu_true(void) { return 1; }
