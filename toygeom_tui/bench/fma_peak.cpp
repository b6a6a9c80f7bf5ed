// This CPU's fp32 peak: independent vector FMAs on every thread, nothing else. The bench
// divides the default run's FLOP rate by it as well as by torch.mm's, because torch's BLAS
// does not reach the peak on every CPU (on an AMD Zen 5 MKL runs its AVX2 code: 2048³ torch.mm
// at ~40% of this figure), so a share of torch.mm alone can pass 100%.
//
// Built like the kernel (-O3 -march=native): the widest vectors the CPU has. Twelve chains of
// FMAs per thread cover the FMA units' latency × throughput (4 cycles × 2 units = 8 chains on
// the CPUs seen) with room to spare; each chain converges to c / (1 − b), so no value
// overflows or turns denormal.

#include <chrono>
#include <thread>
#include <vector>

namespace {

#if defined(__AVX512F__)
constexpr int BYTES = 64;
#elif defined(__AVX__)
constexpr int BYTES = 32;
#else
constexpr int BYTES = 16;
#endif
typedef float vf __attribute__((vector_size(BYTES)));
constexpr int LANES = BYTES / 4, CHAINS = 12;

float chains(long iters) {
    vf a[CHAINS];
    const vf b = vf{} + 0.999999f, c = vf{} + 1e-7f;
    for (int i = 0; i < CHAINS; i++) a[i] = vf{} + float(i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) a[i] = a[i] * b + c;  // one FMA (GCC contracts it)
    }
    float sum = 0;
    for (int i = 0; i < CHAINS; i++)
        for (int l = 0; l < LANES; l++) sum += a[i][l];
    return sum;
}

}  // namespace

extern "C" {

// GFLOP/s of `iters` rounds of CHAINS FMAs on each of `threads` threads (this one included).
double toygeom_fma_peak(int threads, long iters) {
    std::vector<float> sums(threads);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> helpers;
    for (int t = 1; t < threads; t++) helpers.emplace_back([&, t] { sums[t] = chains(iters); });
    sums[0] = chains(iters);
    for (auto& helper : helpers) helper.join();
    const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - t0;
    volatile float keep = sums[0];  // the result is used: the loops are not optimised away
    (void)keep;
    return 2.0 * LANES * CHAINS * iters * threads / seconds.count() / 1e9;
}
}
