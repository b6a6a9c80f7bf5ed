// The toy model's training, fused: for each instance, `n_steps` steps of batch, forward, loss,
// closed-form gradients and Adam in one native call, so a tiny model pays no per-step Python or
// dispatch cost, and no (feats × batch) intermediate ever leaves the cache. The same math as
// `closed_form_grads` in engine/step.py:
//   h = W x, pre = Wᵀ h + b, D = act(pre) − x, G = D · act'(pre) · importance,
//   loss = mean(importance · D²), db = c Σ_batch G, dW = c (h Gᵀ + (W G) xᵀ), c = 2/(batch·feats),
// then torch's Adam / AdamW update of W and b with their moments (the optimizer state the
// Trainer saves).
//
// The batch is drawn here, bit for bit `engine.data.generate_batch`: the SplitMix64 counters of
// engine/rng.py for every variant (a uniform batch's u/p from FMAs, `sparse_uniform`; normal
// magnitudes from engine.data's own log, cos and square root, `normal_magnitudes`); a batch
// can also be passed in (the tests' gradients of a given batch).
//
// Two layouts, one per kind of model:
//   wide (hidden·feats > 64): a tile holds T batch rows, each row the features padded with zeros
//     to a multiple of L (one vector). Padded features are inert (x = 0, W = 0, b = 0 →
//     D = G = 0), so every vector loop runs over whole vectors. The five products are
//     register-blocked: h = W x and W G contract over features, BT rows × BJ hidden dot
//     products at a time, whose vector accumulators are summed across lanes together
//     (`sum_lanes`); pre and dW are outer-product updates along the feature vectors (broadcast
//     × vector FMAs). Each inner loop loads a vector once for all its FMAs (`load_held`) and
//     broadcasts with one instruction (`splat`): at ≤ 0.75 loads an FMA the loops are bound by
//     the FMA units, not the load ports (measured on Zen 3: 1.5× the step rate of loads folded
//     into every FMA and broadcasts built lane by lane). Every block holds 12 sums on AVX2
//     (16–20 on AVX-512), enough to hide the FMAs' latency: one side of each block stays in
//     registers, the other comes in a vector (or a broadcast) at a time. For instances whose
//     features are rare (mean p < SPARSE_P), h = W x runs over each row's nonzeros alone, and
//     for the rarest (< SPARSE_DW_P) dW's term (W G) xᵀ too.
//   narrow (the pentagon, the pairs): the batch is the vector axis; per 8 batch rows the whole
//     step is a few scalar-broadcast FMAs per (hidden, feature) pair, with no padding.
// Written with GCC vector extensions (gcc, clang) rather than intrinsics, one source for AVX2
// and AVX-512: only the vector width, the block sizes and `sum_lanes`'s shuffles differ (the
// sparse path's left-packing and the batch's exact FMAs use intrinsics, with plain code where
// the CPU lacks them).
//
// Threads take whole instances (all steps of one), so every instance is computed in one fixed
// order: the results do not depend on the number of threads or on scheduling.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <type_traits>
#include <vector>

#include <cpuid.h>
#include <immintrin.h>

namespace {

// The wide layout's vectors are the CPU's widest: 16 floats with AVX-512 (32 registers), else 8
// (AVX2, 16 registers); its register blocks are sized to fit (dot products BT × BJ, pre and G
// BT rows × up to BG vectors, dW BT hidden rows × up to BF vectors), as wider vectors split by
// the compiler spill to memory. TOYGEOM_LANES (8 or 16) sets the width where the CPU does not:
// the tests build both widths on every machine, so the AVX-512 layout's logic runs on an AVX2
// CPU (each vector op split in two by the compiler) and the AVX2 layout's on an AVX-512 one.
#ifndef TOYGEOM_LANES
#ifdef __AVX512F__
#define TOYGEOM_LANES 16
#else
#define TOYGEOM_LANES 8
#endif
#endif
#if TOYGEOM_LANES != 8 && TOYGEOM_LANES != 16
#error "TOYGEOM_LANES must be 8 or 16"
#endif
#if TOYGEOM_LANES == 16
constexpr int L = 16, BJ = 4, BF = 5, BG = 5;
#else
constexpr int L = 8, BJ = 3, BF = 3, BG = 3;
#endif
constexpr int BT = 4;  // batch rows (or hidden rows of dW) per register block
constexpr int T = 32;  // batch rows per tile: a tile's x and G rows (2 × 32 × 208 floats) stay in L1/L2
typedef float vf __attribute__((vector_size(4 * L)));
typedef int32_t vi __attribute__((vector_size(4 * L)));

// Unaligned loads and stores as float accesses: a memcpy may alias anything, so after each
// store GCC reloaded every field of Scratch and Shape a loop used.
typedef float vf_unaligned __attribute__((vector_size(4 * L), aligned(4)));
inline vf load(const float* p) { return *reinterpret_cast<const vf_unaligned*>(p); }
inline void store(float* p, vf v) { *reinterpret_cast<vf_unaligned*>(p) = v; }
// Whether one register holds a vf (without AVX, not even 8 floats do): only then can an empty
// asm take and give it in a register ("+v"), as load_held and fresh_zero do.
#if (TOYGEOM_LANES == 8 && defined(__AVX__)) || defined(__AVX512F__)
#define TOYGEOM_VF_IN_A_REGISTER 1
#else
#define TOYGEOM_VF_IN_A_REGISTER 0
#endif
// A vector loaded once for several FMAs: without this GCC folds the load into each FMA as a
// memory operand, so the inner loops issue ~1.5 loads per FMA and wait on the load ports
// (measured on Zen 3); an empty asm that takes and gives the register keeps it loaded once.
inline vf load_held(const float* p) {
    vf v = load(p);
#if TOYGEOM_VF_IN_A_REGISTER
    asm("" : "+v"(v));
#endif
    return v;
}
// A zero vector made where it is called. GCC otherwise makes one zero for a whole function
// and keeps it in a register across the inner loops before its uses: in the AVX2 4 × 3 block of
// pre (12 sums, 3 held vectors, a broadcast) that 17th register spilled a sum to the stack, a
// load-FMA-store chain on every iteration (`kernel_rate`, Zen 3: the default step 1.13×). A
// volatile asm is neither hoisted nor merged with another call's.
inline vf fresh_zero() {
    vf v = vf{};
#if TOYGEOM_VF_IN_A_REGISTER
    asm volatile("" : "+v"(v));
#endif
    return v;
}

// out[j] = Σ_lanes v[j] for L vectors (one register block's accumulators) at once. Each level
// adds the even and odd chunks of a pair of vectors (chunks of L/2, …, 1 lanes), so the L
// horizontal sums cost L − 1 two-vector shuffles-and-adds instead of L separate reductions.
inline void sum_lanes(const vf v[L], float out[L]) {
#if TOYGEOM_LANES == 16
    vf w[8], x[4], y[2];
    for (int i = 0; i < 8; i++)
        w[i] = __builtin_shufflevector(v[2 * i], v[2 * i + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17,
                                       18, 19, 20, 21, 22, 23) +
               __builtin_shufflevector(v[2 * i], v[2 * i + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24,
                                       25, 26, 27, 28, 29, 30, 31);
    for (int i = 0; i < 4; i++)
        x[i] = __builtin_shufflevector(w[2 * i], w[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17,
                                       18, 19, 24, 25, 26, 27) +
               __builtin_shufflevector(w[2 * i], w[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20,
                                       21, 22, 23, 28, 29, 30, 31);
    for (int i = 0; i < 2; i++)
        y[i] = __builtin_shufflevector(x[2 * i], x[2 * i + 1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17,
                                       20, 21, 24, 25, 28, 29) +
               __builtin_shufflevector(x[2 * i], x[2 * i + 1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19,
                                       22, 23, 26, 27, 30, 31);
    store(out, __builtin_shufflevector(y[0], y[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22,
                                       24, 26, 28, 30) +
                   __builtin_shufflevector(y[0], y[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23,
                                           25, 27, 29, 31));
#else
    vf w[4], x[2];
    for (int i = 0; i < 4; i++)
        w[i] = __builtin_shufflevector(v[2 * i], v[2 * i + 1], 0, 1, 2, 3, 8, 9, 10, 11) +
               __builtin_shufflevector(v[2 * i], v[2 * i + 1], 4, 5, 6, 7, 12, 13, 14, 15);
    for (int i = 0; i < 2; i++)
        x[i] = __builtin_shufflevector(w[2 * i], w[2 * i + 1], 0, 1, 4, 5, 8, 9, 12, 13) +
               __builtin_shufflevector(w[2 * i], w[2 * i + 1], 2, 3, 6, 7, 10, 11, 14, 15);
    store(out, __builtin_shufflevector(x[0], x[1], 0, 2, 4, 6, 8, 10, 12, 14) +
                   __builtin_shufflevector(x[0], x[1], 1, 3, 5, 7, 9, 11, 13, 15));
#endif
}

// SplitMix64 as engine/rng.py: the uniform of element e is 24 bits of z = mix64(⌊e/2⌋·γ + key),
// bits 8..31 for an even e and 40..63 for an odd one (one hash, two uniforms).
template <typename Q>  // uint64_t, or a vector of them
inline Q mix64(Q z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
inline float uniform1(uint64_t e, uint64_t key) {
    const uint64_t z = mix64((e >> 1) * 0x9E3779B97F4A7C15ull + key);
    return float(uint32_t(z >> (e & 1 ? 40 : 8)) & 0xFFFFFF) * 0x1p-24f;
}

// f(std::integral_constant<int, n>{}) for a run-time 0 < n < N: a block size as a template
// argument.
template <int N, typename F>
inline void constant_below(int n, F f) {
    if constexpr (N > 1) {
        if (n == N - 1)
            f(std::integral_constant<int, N - 1>{});
        else
            constant_below<N - 1>(n, f);
    }
}

// A broadcast: one vbroadcastss. s − 0 is exactly s (even for −0), so the compiler drops the
// subtraction; vf{} + s would keep a scalar add, and a lane-by-lane fill became 8 inserts.
inline vf splat(float s) { return s - vf{}; }

constexpr int TN = 128;     // batch rows per tile of the narrow layout
constexpr int NARROW = 64;  // hidden·feats up to which a model takes the narrow layout
constexpr int ROWS = TN > T ? TN : T;

// engine.data's streams.
constexpr int PRESENCE = 0, MAGNITUDE = 1, CHOICE = 2, NORMAL_ANGLE = 3;
enum Data { UNIFORM = 0, CORRELATED = 1, ANTICORRELATED = 2, GIVEN = 3, NORMAL = 4 };

// u[i] = the uniform of element e + i (engine.rng.uniforms), for i < n. 2·QL at a time from QL
// hashes (8 on AVX-512, whose vpmullq multiplies 8 64-bit lanes; else 4, one AVX2 register),
// whose two 32-bit halves are, in memory order, the uniforms of elements 2c and 2c + 1, so one
// shift takes each one's 24 bits; the hash's input ⌊e/2⌋·γ + key advances by a constant (one
// 64-bit product fewer a hash, which AVX2 builds from three 32-bit ones).
void draw_uniforms(float* u, uint64_t e, int n, uint64_t key) {
#ifdef __AVX512DQ__
    constexpr int QL = 8;
#else
    constexpr int QL = 4;
#endif
    typedef uint64_t vq __attribute__((vector_size(8 * QL)));
    typedef uint32_t vu __attribute__((vector_size(8 * QL)));
    typedef int32_t vs __attribute__((vector_size(8 * QL)));
    typedef float vu_f __attribute__((vector_size(8 * QL)));
    const uint64_t gamma = 0x9E3779B97F4A7C15ull;
    int i = 0;
    if (n > 0 && e & 1) u[i++] = uniform1(e, key);  // an odd first element: its pair's high half
    vq lane;
    for (int l = 0; l < QL; l++) lane[l] = l;
    vq z = (lane + (e + i) / 2) * gamma + key;
    for (; i + 2 * QL <= n; i += 2 * QL) {
        const vq m = mix64(z);
        z += QL * gamma;
        const vu_f v = __builtin_convertvector((vs)((vu)m >> 8), vu_f) * 0x1p-24f;
        std::memcpy(u + i, &v, sizeof v);
    }
    for (; i < n; i++) u[i] = uniform1(e + i, key);
}

// a·b + c rounded once, lane by lane: the exact residual that `sparse_uniform` needs (a plain
// expression is fused or not at the compiler's choice).
#ifdef __FMA__
inline vf fma_exact(vf a, vf b, vf c) {
#if TOYGEOM_LANES == 16 && defined(__AVX512F__)
    return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#else
    vf out;
    for (int q = 0; q < L; q += 8) {
        __m256 a8, b8, c8;
        std::memcpy(&a8, (const float*)&a + q, 32);
        std::memcpy(&b8, (const float*)&b + q, 32);
        std::memcpy(&c8, (const float*)&c + q, 32);
        const __m256 r = _mm256_fmadd_ps(a8, b8, c8);
        std::memcpy((float*)&out + q, &r, 32);
    }
    return out;
#endif
}
#endif

// y for sparse_uniform: 1/p rounded, 0 for the padding's p = 0, and finite where p is subnormal
// (only u = 0 is below such a p, and 0 · y must stay 0).
inline float reciprocal(float p) { return p > 0 ? std::min(1.0f / p, 0x1.fffffep127f) : 0.0f; }

// engine.data.sparse_uniform, bit for bit: u/p where u < p, else 0, given y = reciprocal(p).
// A division costs ~10 cycles a 16-float vector (it has one unit); the correctly rounded quotient
// comes instead from FMAs: q0 = u·y is within ~1.5 ulp of u/p, one Newton step on the exact
// residual u − p·q makes it faithful (within 1 ulp), and a second gives RN(u/p) (Markstein's
// theorem: y within 2⁻²⁴ relative, q faithful, no underflow: u/p ≥ 2⁻²⁴ where u < p). Checked
// against torch's division over all 2²⁴ uniforms for 81 p (tests/test_fused_cpu.py).
inline vf sparse_uniform(vf u, vf p, vf y) {
#ifdef __FMA__
    vf q = u * y;
    q = fma_exact(fma_exact(-q, p, u), y, q);
    q = fma_exact(fma_exact(-q, p, u), y, q);
#else
    const vf q = u / p;
#endif
    return u < p ? q : 0;
}

// The same by division, the same numbers (both are RN(u/p)): faster on a Zen 4, whose 16-float
// FMAs run one a cycle in two 256-bit halves, so the product and four FMAs above take ~5 cycles
// a vector while its divider takes fewer (32 rows × 200 features in L1: 0.11 ns a uniform
// against 0.18; `kernel_rate`: the default step 1.02–1.04× on one thread, 2026-12-02).
inline vf sparse_uniform_divided(vf u, vf p) { return u < p ? u / p : 0; }

// Whether uniform_tile divides: on AMD family 19h with AVX-512, i.e. Zen 4 (its Zen 3s have no
// AVX-512; Zen 5, family 1Ah, runs 16-float FMAs two a cycle). g++ 12's -march=native names
// both Zens znver3, so this is read from CPUID. TOYGEOM_DIVIDE (0 or 1) decides instead, for
// the tests.
bool divide_is_faster() {
#ifdef TOYGEOM_DIVIDE
    return TOYGEOM_DIVIDE;
#elif defined(__AVX512F__)
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d) || b != 0x68747541) return false;  // "Auth"enticAMD
    __get_cpuid(1, &a, &b, &c, &d);
    return ((a >> 8) & 0xF) + ((a >> 20) & 0xFF) == 0x19;
#else
    return false;
#endif
}
const bool kDivide = divide_is_faster();

}  // namespace

// One call's work, mirrored field for field by `engine.fused_cpu.Job` (ctypes).
struct Job {
    int32_t n_inst, hidden, feats, batch;
    int32_t data;       // Data
    int32_t relu;       // 1: ReLU model, 0: linear
    int32_t n_steps;    // steps in this call
    int32_t n_threads;  // threads to use (at most one per instance)
    int64_t first_step;
    int64_t streams;  // engine.rng.STREAMS: counters of step t, stream s start at (t·streams + s)·n
    uint64_t key;     // engine.rng.seed_key(seed)
    const float* x;   // GIVEN: the batches (n_steps inst batch feats)
    const float* p;   // feature probability (inst feats)
    const float* importance;  // inst feats
    const double* lr;  // n_steps learning rates; null: write the gradients of one step instead
    double beta1, beta2, eps, weight_decay;
    int32_t decoupled;  // 1: AdamW's decoupled weight decay; 0: Adam's L2 term
    int32_t unused;
    float *adam_step_W, *adam_step_b;  // Adam's step counts (torch's float32): advanced here
    float *W, *b;       // inst hidden feats, inst feats: updated in place when stepping
    float *exp_avg_W, *exp_avg_sq_W, *exp_avg_b, *exp_avg_sq_b;  // Adam's moments, likewise
    float* loss;        // inst: the losses of the call's steps, summed
    float *dW, *db;     // gradients (inst hidden feats, inst feats) when lr is null
    float* dims;        // inst feats: each feature's D_i after the call's last step; null: none
};

namespace {

struct Shape {
    int H, F, B, Fp;  // hidden, feats, batch, feats padded to a multiple of L
    int Hp;           // hidden padded to a multiple of L: the rows of Wᵀ
    bool narrow;
};

// One thread's buffers: one instance's padded parameters and moments, one tile's rows.
struct Scratch {
    float *W, *b, *imp;        // H × Fp, Fp, Fp
    float *p, *rp;             // Fp: feature probability and its reciprocal (0 in the padding)
    float* WT;                 // Fp × Hp: Wᵀ, for h = W x over each row's nonzero features
    float *mW, *vW, *mb, *vb;  // Adam's moments, padded like W and b
    float *x, *g;              // T × Fp: the wide tile's batch and G, batch-major
    float *h, *gw;             // T × H (+ Hp): h = W x and W G, batch-major
    int32_t *nz, *nnz;         // T × (Fp + 16), T: each tile row's nonzero features, their count
    float* dWT;                // Fp × Hp: the sparse path's (W G) xᵀ, transposed
    float *dW, *db_tile;       // H × Fp, Fp
    double* db;                // Fp: db over the whole batch (summed in double: 1024+ terms)
    float *flat, *u1, *u2;     // ROWS × F (flat + L): drawn rows, unpadded; pair uniforms
    float *e1, *e2, *pp;       // Fp: a row's pair uniforms, one a feature; the pairs' threshold
    float *cu, *cv;            // a tile's elements (+ L): a normal tile's present uniforms, packed
    int32_t* cpos;             // likewise: where each goes in the tile
    float *xT, *u1T, *u2T;     // F × TN, F/2 × TN: the narrow tile's batch and pair uniforms
    float* block;

    explicit Scratch(const Shape& s) {
        size_t n = 0;  // floats: one pass sizes the block, a second places the buffers in it
        place(s, [&n](size_t k) -> float* {
            n += (k + 15) / 16 * 16;  // keep every buffer 64-byte aligned
            return nullptr;
        });
        block = static_cast<float*>(std::aligned_alloc(64, n * 4));
        if (!block) throw std::bad_alloc();
        // Zeros, so the slack some loops read past a row's end (the tile's last row of uniforms,
        // of h and of W G: lanes that padding masks or that land in unread columns) holds no
        // garbage (NaNs, denormals that slow the FMAs).
        std::memset(block, 0, n * 4);
        float* q = block;
        place(s, [&q](size_t k) {
            float* r = q;
            q += (k + 15) / 16 * 16;
            return r;
        });
    }
    template <typename Take>
    void place(const Shape& s, Take take) {
        const size_t Fp = s.Fp, H = s.H, F = s.F;
        W = take(H * Fp), b = take(Fp), imp = take(Fp), WT = take(Fp * s.Hp);
        p = take(Fp), rp = take(Fp);
        mW = take(H * Fp), vW = take(H * Fp), mb = take(Fp), vb = take(Fp);
        x = take(T * Fp), g = take(T * Fp), h = take(T * H + s.Hp), gw = take(T * H + s.Hp);
        nz = reinterpret_cast<int32_t*>(take(T * (Fp + 16)));
        nnz = reinterpret_cast<int32_t*>(take(T));
        dWT = take(Fp * s.Hp);
        dW = take(H * Fp), db_tile = take(Fp), db = reinterpret_cast<double*>(take(2 * Fp));
        flat = take(ROWS * F + L), u1 = take(ROWS * F), u2 = take(ROWS * F);
        e1 = take(Fp), e2 = take(Fp), pp = take(Fp);
        const size_t packed = std::max(T * Fp, s.narrow ? F * TN : 0) + L;
        cu = take(packed), cv = take(packed), cpos = reinterpret_cast<int32_t*>(take(packed));
        xT = u1T = u2T = nullptr;
        if (s.narrow) xT = take(F * TN), u1T = take(F * TN), u2T = take(F * TN);
    }
    ~Scratch() { std::free(block); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
};

// out[t][j] = Σ_f A[t][f] W[j][f] for the RT × RJ block at (t0, j0); out has row stride H.
// The RJ rows of W stay in registers while the RT rows of A come in one at a time, so a block
// holds RT·RJ + RJ + 1 vectors: on AVX2 a 4 × 3 block (12 sums, enough to hide the FMAs'
// latency) fits the 16 registers.
template <int RT, int RJ>
void dot_block(const float* A, const float* W, const Shape& s, float* out, int t0, int j0) {
    constexpr int N = RT * RJ;
    vf acc[N];
#pragma GCC unroll 32  // else this loop became a memset of acc's copy on the stack, every call
    for (int q = 0; q < N; q++) acc[q] = vf{};
    for (int f = 0; f < s.Fp; f += L) {
        vf w[RJ];
        for (int j = 0; j < RJ; j++) w[j] = load_held(W + (j0 + j) * s.Fp + f);
        for (int i = 0; i < RT; i++) {
            const vf a = load_held(A + (t0 + i) * s.Fp + f);
            for (int j = 0; j < RJ; j++) acc[i * RJ + j] += a * w[j];
        }
    }
    float sums[(N + L - 1) / L * L];
    for (int q = 0; q < N; q += L) {  // L sums at a time, the last padded with zeros
        if (q + L <= N) {
            sum_lanes(acc + q, sums + q);  // a copy of acc, as below, cost a memset each call
        } else {
            vf part[L];
            for (int l = 0; l < L; l++) part[l] = q + l < N ? acc[q + l] : vf{};
            sum_lanes(part, sums + q);
        }
    }
    for (int i = 0; i < RT; i++)
        for (int j = 0; j < RJ; j++) out[(t0 + i) * s.H + j0 + j] = sums[i * RJ + j];
}

// The last `rest` (< BJ) hidden rows: a block of RJ = rest.
template <int RT, int RJ = BJ - 1>
void dot_rest(const float* A, const float* W, const Shape& s, float* out, int t0, int j0,
              int rest) {
    if constexpr (RJ > 0) {
        if (rest == RJ)
            dot_block<RT, RJ>(A, W, s, out, t0, j0);
        else
            dot_rest<RT, RJ - 1>(A, W, s, out, t0, j0, rest);
    }
}

template <int RT>
void dot_rows(const float* A, const float* W, const Shape& s, float* out, int t0) {
    int j0 = 0;
    for (; j0 + BJ <= s.H; j0 += BJ) dot_block<RT, BJ>(A, W, s, out, t0, j0);
    dot_rest<RT>(A, W, s, out, t0, j0, s.H - j0);
}

// out (nt × H) = A (nt × Fp) Wᵀ: h = W x and W G for a tile, batch-major.
void dot_tile(const float* A, const float* W, const Shape& s, float* out, int nt) {
    int t0 = 0;
    for (; t0 + BT <= nt; t0 += BT) dot_rows<BT>(A, W, s, out, t0);
    switch (nt - t0) {
        case 3: dot_rows<3>(A, W, s, out, t0); break;
        case 2: dot_rows<2>(A, W, s, out, t0); break;
        case 1: dot_rows<1>(A, W, s, out, t0); break;
    }
}

// The sparse batch: an instance whose features are present with a small probability p has
// mostly zeros in x, and h = W x over a row's nonzero features alone costs ~3.8 cycles each
// against ~1.9 a feature dense (perf, Zen 3: the Wᵀ rows are gathered, not streamed). Instances
// whose mean p is below SPARSE_P take this path: on AVX2 (Zen 3) 1.03× on the default run's
// step, any threshold from 0.2 to 0.7 measuring the same; on AVX-512, whose dense products are
// twice as wide, only below 0.15 (Zen 5, one instance's step: +5–10% at p 0.2–0.33 on this
// path; the Xeon measured 0.12–0.35 the same). Below SPARSE_DW_P, dW's term (W G) xᵀ also runs
// over the nonzeros (`sparse_dw_tile`; AVX-512 Xeon, one instance's step: −9% at p = 0.05 and
// 0.1, +9% at 0.2; the default run 1.02–1.06×). Results stay deterministic: the choice depends
// on p alone. TOYGEOM_SPARSE_P sets SPARSE_P where the CPU does not: the tests build 0.5 so the
// path of sparse h with dense dW runs on AVX-512 CPUs too.
#ifdef TOYGEOM_SPARSE_P
constexpr float SPARSE_P = TOYGEOM_SPARSE_P;
#elif defined(__AVX512F__)
constexpr float SPARSE_P = 0.15f;
#else
constexpr float SPARSE_P = 0.35f;
#endif
constexpr float SPARSE_DW_P = 0.15f;
constexpr int SPARSE_HV = 4;  // hidden vectors (Hp / L) up to which it applies

// Left-packing 8 lanes: kPack.lanes[m] lists the set bits of m (lane numbers, a byte each), so
// a permutation by it moves the lanes a compare selected to the front.
struct PackTable {
    uint64_t lanes[256];
    PackTable() {
        for (int m = 0; m < 256; m++) {
            uint64_t packed = 0;
            for (int l = 0, n = 0; l < 8; l++)
                if (m >> l & 1) packed |= uint64_t(l) << (8 * n++);
            lanes[m] = packed;
        }
    }
};
const PackTable kPack;

// The features of row x (Fp floats, a multiple of 8) whose value is not zero, into nz (Fp + 16
// ints); returns their count. AVX-512 compresses 16 lanes at once (a masked load takes the last 8
// of an 8-lane layout's row); AVX2 permutes 8 by a table.
int nonzero_features(const float* x, int Fp, int32_t* nz) {
    int n = 0;
#ifdef __AVX512F__
    __m512i f = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int q = 0; q < Fp; q += 16, f = _mm512_add_epi32(f, _mm512_set1_epi32(16))) {
        const __mmask16 in = Fp - q >= 16 ? 0xFFFF : __mmask16((1u << (Fp - q)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(in, x + q);
        const __mmask16 m = _mm512_mask_cmp_ps_mask(in, v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        _mm512_storeu_si512(nz + n, _mm512_maskz_compress_epi32(m, f));
        n += __builtin_popcount(unsigned(m));
    }
#elif defined(__AVX2__)
    __m256i f = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int q = 0; q < Fp; q += 8, f = _mm256_add_epi32(f, _mm256_set1_epi32(8))) {
        const __m256 v = _mm256_loadu_ps(x + q);
        const int m = _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_NEQ_UQ));
        const __m256i order = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(kPack.lanes[m])));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(nz + n),
                            _mm256_permutevar8x32_epi32(f, order));
        n += __builtin_popcount(unsigned(m));
    }
#else
    for (int f = 0; f < Fp; f++) nz[n] = f, n += x[f] != 0;
#endif
    return n;
}

// h[t] = Σ_f x[t][f] Wᵀ[f] over row t's nonzero features, for HV hidden vectors: three sums side
// by side, a nonzero each in turn, hide the FMAs' latency.
template <int HV>
void sparse_h_tile(Scratch& k, const Shape& s, int nt) {
    constexpr int HP = HV * L;
    for (int t = 0; t < nt; t++) {
        const float* x = k.x + t * s.Fp;
        int32_t* const nz = k.nz + t * (s.Fp + 16);
        const int n = k.nnz[t] = nonzero_features(x, s.Fp, nz);
        vf a[HV], b[HV], c[HV];
        for (int v = 0; v < HV; v++) a[v] = b[v] = c[v] = vf{};  // `= {}` spilled to the stack
        int q = 0;
        for (; q + 3 <= n; q += 3) {
            const int f0 = nz[q], f1 = nz[q + 1], f2 = nz[q + 2];
            const vf x0 = splat(x[f0]), x1 = splat(x[f1]), x2 = splat(x[f2]);
            for (int v = 0; v < HV; v++) {
                a[v] += x0 * load(k.WT + f0 * HP + v * L);
                b[v] += x1 * load(k.WT + f1 * HP + v * L);
                c[v] += x2 * load(k.WT + f2 * HP + v * L);
            }
        }
        for (; q < n; q++) {
            const int f = nz[q];
            const vf xf = splat(x[f]);
            for (int v = 0; v < HV; v++) a[v] += xf * load(k.WT + f * HP + v * L);
        }
        // HP ≥ H floats: past H they overwrite the start of row t + 1, stored next (k.h has HP
        // floats of slack for the last row); a memcpy of the row's H took 2% of the step.
        for (int v = 0; v < HV; v++) store(k.h + t * s.H + v * L, a[v] + b[v] + c[v]);
    }
}

// Wᵀ (Fp × Hp, zero-padded) from W (H × Fp), for sparse_h_tile.
void transpose_W(Scratch& k, const Shape& s) {
    std::fill(k.WT, k.WT + s.Fp * s.Hp, 0.0f);
    for (int h = 0; h < s.H; h++)
        for (int f = 0; f < s.Fp; f++) k.WT[f * s.Hp + h] = k.W[h * s.Fp + f];
}

// h = W x for a tile (nt × H): over the nonzeros (sparse) or every feature.
void h_tile(Scratch& k, const Shape& s, int nt, bool sparse) {
    static_assert(SPARSE_HV == 4, "the switch below takes 1..SPARSE_HV hidden vectors");
    if (sparse) {
        switch (s.Hp / L) {
            case 1: return sparse_h_tile<1>(k, s, nt);
            case 2: return sparse_h_tile<2>(k, s, nt);
            case 3: return sparse_h_tile<3>(k, s, nt);
            case 4: return sparse_h_tile<4>(k, s, nt);
        }
    }
    dot_tile(k.x, k.W, s, k.h, nt);
}

// pre = b + Σ_h h[t][h] W[h] for rows t0.. and feature vectors f0..; then D, G (stored in g),
// and their sums into loss and db_tile.
template <int RT, int NF, bool RELU>
void grad_block(Scratch& k, const Shape& s, int t0, int f0, vf& loss) {
    vf acc[RT][NF];
    for (int i = 0; i < RT; i++)
        for (int j = 0; j < NF; j++) acc[i][j] = load(k.b + f0 + j * L);
    for (int hh = 0; hh < s.H; hh++) {
        vf w[NF];
        for (int j = 0; j < NF; j++) w[j] = load_held(k.W + hh * s.Fp + f0 + j * L);
        for (int i = 0; i < RT; i++) {
            vf hb = splat(k.h[(t0 + i) * s.H + hh]);
            for (int j = 0; j < NF; j++) acc[i][j] += hb * w[j];
        }
    }
    // Unrolled, so the sums stay in registers (a rolled loop indexing acc spilled all of them);
    // one loss sum a row, not one for the block, whose RT·NF FMAs would wait on each other; the
    // tile's pointers taken once.
    const float* const imp = k.imp + f0;
    const vf zero = fresh_zero();  // the ReLU's, made after the loop above
    const float* const x = k.x + t0 * s.Fp + f0;
    float* const g = k.g + t0 * s.Fp + f0;
    float* const db = k.db_tile + f0;
    vf row_loss[RT];
#pragma GCC unroll 8
    for (int i = 0; i < RT; i++) row_loss[i] = vf{};
#pragma GCC unroll 8
    for (int j = 0; j < NF; j++) {
        const vf imp_j = load(imp + j * L);
        vf db_j = load(db + j * L);
#pragma GCC unroll 8
        for (int i = 0; i < RT; i++) {
            const vf pre = acc[i][j];
            const vf d = (RELU ? (pre > zero ? pre : 0) : pre) - load(x + i * s.Fp + j * L);
            const vf d_imp = d * imp_j;
            const vf g_ij = RELU ? (pre > zero ? d_imp : 0) : d_imp;
            row_loss[i] += d_imp * d;
            db_j += g_ij;
            store(g + i * s.Fp + j * L, g_ij);
        }
        store(db + j * L, db_j);
    }
    vf block_loss = row_loss[0];  // summed here, not into `loss`: that is memory
#pragma GCC unroll 8
    for (int i = 1; i < RT; i++) block_loss += row_loss[i];
    loss += block_loss;
}

// The Fp / L feature vectors in blocks of at most MAX, as even as can be: `block(f0, nf)` for
// each, with nf as a compile-time constant (std::integral_constant). 13 vectors at most 5 a block
// are 5 + 4 + 4, not 5 + 5 + 3 or 4 + 4 + 4 + 1: a block of one vector holds a quarter of the
// sums that hide the FMAs' latency, and took 11% of dW's time for 1/13 of its work (AVX-512).
template <int MAX, typename Block>
void feature_blocks(const Shape& s, Block block) {
    const int nv = s.Fp / L, n = (nv + MAX - 1) / MAX;
    for (int b = 0, v = 0; b < n; b++) {
        const int nf = (nv - v + n - b - 1) / (n - b);  // ⌈vectors left / blocks left⌉ ≤ MAX
        constant_below<MAX + 1>(nf, [&](auto NF) { block(v * L, NF); });
        v += nf;
    }
}

template <int RT, bool RELU>
void grad_rows(Scratch& k, const Shape& s, int t0, vf& loss) {
    feature_blocks<BG>(s, [&](int f0, auto NF) { grad_block<RT, NF, RELU>(k, s, t0, f0, loss); });
}

template <bool RELU>
void grad_tile(Scratch& k, const Shape& s, int nt, vf& loss) {
    int t0 = 0;
    for (; t0 + BT <= nt; t0 += BT) grad_rows<BT, RELU>(k, s, t0, loss);
    switch (nt - t0) {
        case 3: grad_rows<3, RELU>(k, s, t0, loss); break;
        case 2: grad_rows<2, RELU>(k, s, t0, loss); break;
        case 1: grad_rows<1, RELU>(k, s, t0, loss); break;
    }
}

// dW[h] += Σ_t h[t][h] G[t] + (W G)[t][h] x[t] for hidden rows h0.. and feature vectors f0..:
// one product of k = 2·nt terms, [h | W G]ᵀ [G; x], taken as two loops over the same sums (the
// first alone where sparse_dw_tile adds the second). Each step adds once to every sum, its NF
// vectors held and its RH broadcasts one at a time, so an AVX2 block of 4 × 3 (12 sums, enough
// to hide the FMAs' latency) fits the 16 registers, an AVX-512 one of 4 × 5 the 32.
template <int RH, int NF>
void dw_block(Scratch& k, const Shape& s, int h0, int f0, int nt, bool sparse_dw) {
    vf acc[RH][NF];
    for (int i = 0; i < RH; i++)
        for (int j = 0; j < NF; j++) acc[i][j] = load(k.dW + (h0 + i) * s.Fp + f0 + j * L);
    auto add = [&](const float* left, const float* right) {  // acc += leftᵀ right over the tile
        for (int t = 0; t < nt; t++) {
            vf r[NF];
            for (int j = 0; j < NF; j++) r[j] = load_held(right + t * s.Fp + f0 + j * L);
            for (int i = 0; i < RH; i++) {
                const vf lb = splat(left[t * s.H + h0 + i]);
                for (int j = 0; j < NF; j++) acc[i][j] += lb * r[j];
            }
        }
    };
    add(k.h, k.g);
    if (!sparse_dw) add(k.gw, k.x);
    for (int i = 0; i < RH; i++)
        for (int j = 0; j < NF; j++) store(k.dW + (h0 + i) * s.Fp + f0 + j * L, acc[i][j]);
}

// Feature blocks outermost: a block's columns of G and x (2 × 32 rows × ≤ 80 floats) stay in
// L1 while every hidden row takes them; hidden rows outermost swept all of both (52 KB for the
// default) from L2 once per 4 hidden rows.
void dw_tile(Scratch& k, const Shape& s, int nt, bool sparse_dw) {
    feature_blocks<BF>(s, [&](int f0, auto NF) {
        int h0 = 0;
        for (; h0 + BT <= s.H; h0 += BT) dw_block<BT, NF>(k, s, h0, f0, nt, sparse_dw);
        constant_below<BT>(s.H - h0,  // the last rows, fewer than BT
                           [&](auto RH) { dw_block<RH, NF>(k, s, h0, f0, nt, sparse_dw); });
    });
}

// dWᵀ[f] += x[t][f] (W G)[t] over each row's nonzero features (sparse_h_tile's lists), for HV
// hidden vectors: dW's term (W G) xᵀ of a sparse batch (AVX-512 Xeon: ~4 cycles a nonzero,
// against ~1.4 a feature dense). A row's W G is read as HV vectors: past H they hold the next
// row's (or gw's slack), which land in dWᵀ's padding columns, never read.
template <int HV>
void sparse_dw_tile(Scratch& k, const Shape& s, int nt) {
    constexpr int HP = HV * L;
    for (int t = 0; t < nt; t++) {
        const float* const x = k.x + t * s.Fp;
        const int32_t* const nz = k.nz + t * (s.Fp + 16);
        vf gw[HV];
        for (int v = 0; v < HV; v++) gw[v] = load(k.gw + t * s.H + v * L);
        for (int q = 0, n = k.nnz[t]; q < n; q++) {
            float* const row = k.dWT + nz[q] * HP;
            const vf xf = splat(x[nz[q]]);
            for (int v = 0; v < HV; v++) store(row + v * L, load(row + v * L) + xf * gw[v]);
        }
    }
}

void sparse_dw_term(Scratch& k, const Shape& s, int nt) {
    switch (s.Hp / L) {
        case 1: return sparse_dw_tile<1>(k, s, nt);
        case 2: return sparse_dw_tile<2>(k, s, nt);
        case 3: return sparse_dw_tile<3>(k, s, nt);
        case 4: return sparse_dw_tile<4>(k, s, nt);
    }
}

// dW += (dWᵀ)ᵀ: the sparse term, once a step.
void fold_dWT(Scratch& k, const Shape& s) {
    for (int h = 0; h < s.H; h++)
        for (int f = 0; f < s.Fp; f++) k.dW[h * s.Fp + f] += k.dWT[f * s.Hp + h];
}

uint64_t stream_base(const Job& j, int64_t step, int stream, uint64_t n) {
    return (uint64_t(step) * uint64_t(j.streams) + uint64_t(stream)) * n;  // wraps as rng.py's
}

// The raw uniforms of rows b0 .. b0+nt−1 of instance `inst`'s batch at the call's i-th step:
// (inst, row, feat) takes counter n·(step·streams + stream) + (inst·batch + row)·F + feat of each
// stream it draws, a pair stream F/2 per row (engine.data.generate_batch). Uniform data: its
// one stream into k.flat (nt × F); pairs: magnitudes into k.flat, presence into k.u1 and the
// anticorrelated choice into k.u2 (nt × F/2); normal magnitudes: the magnitude's uniform into
// k.flat, presence into k.u1, the angle's into k.u2 (nt × F); given batches: their rows into
// k.flat.
void draw_raw(const Job& j, Scratch& k, int inst, int i, int b0, int nt) {
    const int F = j.feats, K = F / 2;
    const int64_t step = j.first_step + i;
    const uint64_t row0 = uint64_t(inst) * j.batch + b0;
    const uint64_t n = uint64_t(j.n_inst) * j.batch * F;
    if (j.data == GIVEN) {
        std::memcpy(k.flat, j.x + ((size_t(i) * j.n_inst + inst) * j.batch + b0) * F,
                    sizeof(float) * nt * F);
    } else if (j.data == UNIFORM) {
        draw_uniforms(k.flat, stream_base(j, step, PRESENCE, n) + row0 * F, nt * F, j.key);
    } else if (j.data == NORMAL) {
        draw_uniforms(k.flat, stream_base(j, step, MAGNITUDE, n) + row0 * F, nt * F, j.key);
        draw_uniforms(k.u1, stream_base(j, step, PRESENCE, n) + row0 * F, nt * F, j.key);
        draw_uniforms(k.u2, stream_base(j, step, NORMAL_ANGLE, n) + row0 * F, nt * F, j.key);
    } else {
        draw_uniforms(k.flat, stream_base(j, step, MAGNITUDE, n) + row0 * F, nt * F, j.key);
        draw_uniforms(k.u1, stream_base(j, step, PRESENCE, n / 2) + row0 * K, nt * K, j.key);
        if (j.data == ANTICORRELATED)
            draw_uniforms(k.u2, stream_base(j, step, CHOICE, n / 2) + row0 * K, nt * K, j.key);
    }
}

// The narrow layout's vectors (and the batch's elementwise work): 8 lanes, native on AVX2 and
// AVX-512 alike.
constexpr int LN = 8;
typedef float vn __attribute__((vector_size(32)));
typedef int32_t vni __attribute__((vector_size(32)));
inline vn load_n(const float* p, int n = LN) {  // lanes past n are zero
    vn v = {};
    if (n == LN)
        std::memcpy(&v, p, sizeof v);
    else
        for (int l = 0; l < n; l++) v[l] = p[l];
    return v;
}
inline void store_n(float* p, vn v, int n = LN) {
    if (n == LN)
        std::memcpy(p, &v, sizeof v);
    else
        for (int l = 0; l < n; l++) p[l] = v[l];
}
inline vn splat_n(float s) { return s - vn{}; }  // as splat

// engine.data's _split, log_one_minus, cos_two_pi, square_root and normal_magnitudes, op for
// op: float32 products, sums and divisions, each rounded as there (its constants, exactly), on
// the wide layout's vectors in both layouts: with AVX-512 their long dependency chains run 16
// lanes at a time.

// A product kept apart from the sum it feeds: GCC fuses a·b + c into one FMA (one rounding)
// where the CPU has them, and engine.data rounds both, as torch's separate ops do. An empty asm
// takes one register, so a 16-float vector on a CPU without AVX-512 goes as two halves.
inline vf unfused(vf v) {
#if defined(__FMA__) && TOYGEOM_LANES == 16 && !defined(__AVX512F__)
    vn lo, hi;
    std::memcpy(&lo, &v, 32), std::memcpy(&hi, reinterpret_cast<char*>(&v) + 32, 32);
    asm("" : "+v"(lo), "+v"(hi));
    std::memcpy(&v, &lo, 32), std::memcpy(reinterpret_cast<char*>(&v) + 32, &hi, 32);
#elif defined(__FMA__)
    asm("" : "+v"(v));
#endif
    return v;
}
inline void split(vf x, vi& e, vf& m) {  // x = m·2^e, m in [1, 2)
    const vi bits = (vi)x;
    e = (bits >> 23) - 127;
    m = (vf)((bits & 0x7FFFFF) | 0x3F800000);
}
inline vf log_one_minus(vf u) {
    vi e;
    vf m;
    split(1.0f - u, e, m);
    const vi big = m > 0x1.6a09e6p+0f;  // √2
    m = big ? m * 0.5f : m;
    e = big ? e + 1 : e;
    const vf s = (m - 1.0f) / (m + 1.0f), t = unfused(s * s);
    vf r = splat(0x1.c71c72p-3f);  // 2/9, 2/7, 2/5, 2/3, 2
    for (float c : {0x1.24924ap-2f, 0x1.99999ap-2f, 0x1.555556p-1f, 2.0f}) r = unfused(r * t) + c;
    return unfused(__builtin_convertvector(e, vf) * 0x1.62e43p-1f) + unfused(s * r);
}
inline vf cos_two_pi(vf v) {
    vf a = v >= 0.5f ? 1.0f - v : v;
    const vi flip = a > 0.25f;
    a = flip ? 0.5f - a : a;
    const vf t = unfused(a * a);
    vf r = splat(-0x1.b6e25p+0f);  // C7 .. C0: (−1)^k (2π)^2k / (2k)!
    for (float c : {0x1.f9d38ap+2f, -0x1.a6d1f2p+4f, 0x1.e1f506p+5f, -0x1.55d3c8p+6f,
                    0x1.03c1fp+6f, -0x1.3bd3ccp+4f, 1.0f})
        r = unfused(r * t) + c;
    return flip ? -r : r;
}
inline vf square_root(vf x) {
    vi e;
    vf m;
    split(x, e, m);
    const vi odd = (e & 1) == 1;
    m = odd ? m * 2.0f : m;  // [1, 4)
    const vi k = (odd ? e - 1 : e) >> 1;
    vf y = unfused(0x1.555556p-2f * m) + 0x1.555556p-1f;
    for (int i = 0; i < 3; i++) y = 0.5f * (y + m / y);
    const vf scale = (vf)((k + 127) << 23);  // 2^k, exactly
    return x == 0.0f ? x : y * scale;
}
inline vf normal_magnitudes(vf u, vf v) {
    const vf root = square_root(-2.0f * log_one_minus(u));
    const vf y = 0.5f + unfused(0x1.99999ap-3f * unfused(root * cos_two_pi(v)));
    return y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y;  // clamp(0, 1)
}

// Bit l set where lane l of m is set (−1: a comparison's true).
inline unsigned lane_bits(vni m) {
#ifdef __AVX__
    return unsigned(_mm256_movemask_ps((__m256)m));
#else
    unsigned bits = 0;
    for (int l = 0; l < LN; l++) bits |= unsigned(m[l] != 0) << l;
    return bits;
#endif
}
// v's lanes whose bit is set in `bits`, moved to the front in order (the lanes after them:
// any of v's, or 0). Bits moved, not values computed: ints travel as floats unchanged.
// AVX-512 compresses in a register (Zen 4 microcodes compress to memory); AVX2 permutes by
// kPack's table.
inline vn pack_n(vn v, unsigned bits) {
#if defined(__AVX512VL__) && defined(__AVX512F__)
    return (vn)_mm256_maskz_compress_ps(__mmask8(bits), (__m256)v);
#elif defined(__AVX2__)
    const __m256i order = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(kPack.lanes[bits])));
    return (vn)_mm256_permutevar8x32_ps((__m256)v, order);
#else
    vn out = {};
    for (int l = 0, n = 0; l < LN; l++)
        if (bits >> l & 1) out[n++] = v[l];
    return out;
#endif
}

// A normal batch's present elements, packed: `pack_present` appends the lanes of u and v (the
// magnitude's and the angle's uniforms) where `present`, with their places `at` in the tile, to
// k.cu, k.cv, k.cpos after the n already there, and returns the new count; `place_packed`
// computes normal_magnitudes of the n packed, L at a time, and puts each in its place in x,
// whose other elements the caller zeroed. So the math runs on the present elements alone:
// computing every 8 features (or 8 rows of a feature) with one present computed ~3× the values
// kept at the default run's mean p of 0.32. No branch on "any present": p decides that.
inline int pack_present(Scratch& k, int n, vni present, vn u, vn v, vni at) {
    const unsigned bits = lane_bits(present);
    store_n(k.cu + n, pack_n(u, bits));
    store_n(k.cv + n, pack_n(v, bits));
    store_n(reinterpret_cast<float*>(k.cpos + n), pack_n((vn)at, bits));
    return n + __builtin_popcount(bits);
}
void place_packed(Scratch& k, int n, float* x) {
    for (int q = 0; q < n; q += L) {  // the last vector's lanes past n: stale uniforms, unused
        const vf y = normal_magnitudes(load(k.cu + q), load(k.cv + q));
        for (int l = 0, c = std::min(L, n - q); l < c; l++) x[k.cpos[q + l]] = y[l];
    }
}
// The present elements of nt drawn rows (k.flat, k.u1, k.u2: nt × F), packed a row's first
// `width` features at a time, 8 each: present where the presence uniform is below k.p (0 in
// the padding, whatever its lanes read past the row's end). at(t, f) gives the places in the
// tile of row t's features f .. f + 7. Returns how many were packed.
template <typename At>
int pack_rows(Scratch& k, int nt, int F, int width, At at) {
    int n = 0;
    for (int t = 0; t < nt; t++)
        for (int f = 0; f < width; f += LN) {
            const int r = t * F + f;
            n = pack_present(k, n, load_n(k.u1 + r) < load_n(k.p + f), load_n(k.flat + r),
                             load_n(k.u2 + r), at(t, f));
        }
    return n;
}
const vni kLanes = {0, 1, 2, 3, 4, 5, 6, 7};

// The narrow layout's batch from its raw uniforms, elementwise as generate_batch, for m values x
// of one feature (probability p, pair uniforms u1, u2); the wide layout's is uniform_tile's and
// pairs_tile's, by the same rules. Uniform: x = u/p if u < p else 0. Pairs (2q, 2q+1) use the
// first feature's p: correlated, both present if u1 < p; anticorrelated, one of them if u1 < 2p
// (the first if u2 < 0.5), never both; present features keep their magnitude U[0, 1). (Normal
// magnitudes are packed instead: `draw_columns`, `normal_tile`.)
void combine(float* x, const float* u1, const float* u2, float p, int data, bool first, int m) {
    if (data == GIVEN) return;
    for (int t = 0; t < m; t += LN) {
        const int c = std::min(LN, m - t);
        vn v = load_n(x + t, c);
        if (data == UNIFORM) {
            const vn pv = splat_n(p);
            v = v < pv ? v / pv : 0;
        } else if (data == CORRELATED) {
            v = load_n(u1 + t, c) < p ? v : 0;
        } else {
            vni picked = load_n(u2 + t, c) < 0.5f;
            if (!first) picked = ~picked;
            v = (load_n(u1 + t, c) < 2 * p) & picked ? v : 0;
        }
        store_n(x + t, v, c);
    }
}

// Rows b0 .. b0+nt−1 of the batch into k.xT (F × TN), feature-major, lanes nt .. m−1 zero:
// the raw uniforms are drawn as rows (consecutive elements share hashes), transposed (F ≤
// NARROW: a few hundred values a tile), then combined a whole column of one feature at a time;
// normal magnitudes are packed straight from the rows (their three transposes took ~a fifth
// of the pentagon's step).
void draw_columns(const Job& j, Scratch& k, int inst, int i, int b0, int nt, int m) {
    draw_raw(j, k, inst, i, b0, nt);
    const int F = j.feats, K = F / 2;
    if (j.data == NORMAL) {  // packed from the rows, each value placed in its column
        const int n = pack_rows(k, nt, F, F, [](int t, int f) { return kLanes * TN + f * TN + t; });
        for (int f = 0; f < F; f++) std::fill(k.xT + f * TN, k.xT + f * TN + m, 0.0f);
        return place_packed(k, n, k.xT);
    }
    auto transpose = [&](const float* rows, float* columns, int width) {  // nt × width
        for (int f = 0; f < width; f++) {
            float* column = columns + f * TN;
            for (int t = 0; t < nt; t++) column[t] = rows[t * width + f];
            std::fill(column + nt, column + m, 0.0f);
        }
    };
    transpose(k.flat, k.xT, F);
    const bool pairs = j.data == CORRELATED || j.data == ANTICORRELATED;
    if (pairs) transpose(k.u1, k.u1T, K);
    if (j.data == ANTICORRELATED) transpose(k.u2, k.u2T, K);
    const float* p = j.p + size_t(inst) * F;
    for (int f = 0; f < F; f++) {
        const int q = pairs ? f & ~1 : f;  // pairs use their first feature's p and uniforms
        combine(k.xT + f * TN, k.u1T + q / (pairs + 1) * TN, k.u2T + q / (pairs + 1) * TN, p[q],
                j.data, f % 2 == 0, nt);
    }
}

// Rows b0 .. b0+nt−1 of a uniform batch into the wide tile k.x (nt × Fp, zero-padded): the raw
// uniforms drawn as one run, then sparse_uniform a vector at a time, straight into the tile (a
// row's last vector reads into the next row, or the slack past the last: the padding's p = 0
// makes those lanes 0).
void uniform_tile(const Job& j, Scratch& k, const Shape& s, int inst, int i, int b0, int nt) {
    draw_raw(j, k, inst, i, b0, nt);
    if (kDivide) {
        for (int t = 0; t < nt; t++)
            for (int f = 0; f < s.Fp; f += L)
                store(k.x + t * s.Fp + f,
                      sparse_uniform_divided(load(k.flat + t * s.F + f), load(k.p + f)));
        return;
    }
    for (int t = 0; t < nt; t++)
        for (int f = 0; f < s.Fp; f += L)
            store(k.x + t * s.Fp + f,
                  sparse_uniform(load(k.flat + t * s.F + f), load(k.p + f), load(k.rp + f)));
}

// Rows b0 .. b0+nt−1 of a batch of pairs into the wide tile, a vector at a time, as `combine`
// decides each value: a row's pair uniforms spread to both features of their pair (k.e1, k.e2),
// compared with each pair's threshold (k.pp: its first feature's p, 2p for anticorrelated
// pairs; 0 in the padding, whose lanes come out 0 whatever they read past the row's end).
// Against element by element through `combine`: the default shape's step 1.37× faster on
// correlated pairs, 1.60× on anticorrelated ones (p 0.25; `kernel_rate.best_step_seconds`, one
// thread, Zen 4).
void pairs_tile(const Job& j, Scratch& k, const Shape& s, int inst, int i, int b0, int nt) {
    draw_raw(j, k, inst, i, b0, nt);
    const int F = s.F, K = F / 2;
    const bool anti = j.data == ANTICORRELATED;
    for (int f = 0; f < F; f++) k.pp[f] = anti ? 2 * k.p[f & ~1] : k.p[f & ~1];
    vi first;  // lanes of a pair's first feature (f0 is a multiple of L, so even lanes)
    for (int l = 0; l < L; l++) first[l] = l % 2 == 0 ? -1 : 0;
    for (int t = 0; t < nt; t++) {
        const float *u1 = k.u1 + t * K, *u2 = k.u2 + t * K;
        for (int q = 0; q < K; q++) k.e1[2 * q] = k.e1[2 * q + 1] = u1[q];
        if (anti)
            for (int q = 0; q < K; q++) k.e2[2 * q] = k.e2[2 * q + 1] = u2[q];
        for (int f = 0; f < s.Fp; f += L) {
            vi keep = load(k.e1 + f) < load(k.pp + f);
            if (anti) keep &= (load(k.e2 + f) < 0.5f) == first;  // the first if u2 < 1/2
            store(k.x + t * s.Fp + f, keep ? load(k.flat + t * F + f) : 0);
        }
    }
}

// Rows b0 .. b0+nt−1 of a batch of normal magnitudes into the wide tile: normal_magnitudes of
// the present elements' two uniforms (`pack_rows`), 0 elsewhere.
void normal_tile(const Job& j, Scratch& k, const Shape& s, int inst, int i, int b0, int nt) {
    draw_raw(j, k, inst, i, b0, nt);
    const int Fp = s.Fp;
    const int n = pack_rows(k, nt, s.F, Fp, [Fp](int t, int f) { return kLanes + t * Fp + f; });
    std::fill(k.x, k.x + nt * Fp, 0.0f);
    place_packed(k, n, k.x);
}

// One step's loss (summed over batch and features) and unscaled gradients (k.dW, k.db),
// wide layout.
template <bool RELU>
double wide_grads(const Job& j, Scratch& k, const Shape& s, int inst, int i, bool sparse,
                  bool sparse_dw) {
    const int F = s.F, Fp = s.Fp;
    double loss = 0;
    for (int b0 = 0; b0 < s.B; b0 += T) {
        const int nt = std::min(T, s.B - b0);
        if (j.data == UNIFORM) {
            uniform_tile(j, k, s, inst, i, b0, nt);
        } else if (j.data == CORRELATED || j.data == ANTICORRELATED) {
            pairs_tile(j, k, s, inst, i, b0, nt);
        } else if (j.data == NORMAL) {
            normal_tile(j, k, s, inst, i, b0, nt);
        } else {  // given: the rows as passed in
            draw_raw(j, k, inst, i, b0, nt);
            for (int t = 0; t < nt; t++) {
                std::memcpy(k.x + t * Fp, k.flat + t * F, F * sizeof(float));
                std::fill(k.x + t * Fp + F, k.x + (t + 1) * Fp, 0.0f);
            }
        }
        h_tile(k, s, nt, sparse);  // h = W x
        std::fill(k.db_tile, k.db_tile + Fp, 0.0f);
        vf tile_loss = {};
        grad_tile<RELU>(k, s, nt, tile_loss);  // pre, D, G
        dot_tile(k.g, k.W, s, k.gw, nt);       // W G
        dw_tile(k, s, nt, sparse_dw);          // dW += h Gᵀ + (W G) xᵀ
        if (sparse_dw) sparse_dw_term(k, s, nt);
        for (int f = 0; f < Fp; f++) k.db[f] += k.db_tile[f];
        for (int l = 0; l < L; l++) loss += tile_loss[l];
    }
    return loss;
}

template <typename V>
inline double lane_sum(V v) {
    double sum = 0;
    for (int l = 0; l < int(sizeof v / sizeof(float)); l++) sum += v[l];
    return sum;
}

// The same for the narrow layout: LN batch rows per vector, hidden·feats ≤ NARROW.
// HC, FC: hidden and feats known when compiled (the presets' tiny shapes, fully unrolled and
// held in registers), or 0: taken from s.
template <bool RELU, int HC, int FC>
double narrow_grads(const Job& j, Scratch& k, const Shape& s, int inst, int i) {
    const int H = HC ? HC : s.H, F = FC ? FC : s.F, Fp = s.Fp;
    vn dW[NARROW] = {}, db[NARROW] = {}, loss = {};
    for (int b0 = 0; b0 < s.B; b0 += TN) {
        const int nt = std::min(TN, s.B - b0);
        const int nv = (nt + LN - 1) / LN;
        draw_columns(j, k, inst, i, b0, nt, nv * LN);
        for (int v = 0; v < nv; v++) {
            const vni valid = kLanes < (nt - v * LN);  // rows past the batch's end add nothing
            vn x[NARROW], h[NARROW], g[NARROW], gw[NARROW];
            for (int f = 0; f < F; f++) x[f] = load_n(k.xT + f * TN + v * LN);
            for (int jh = 0; jh < H; jh++) {
                vn acc = {};
                for (int f = 0; f < F; f++) acc += splat_n(k.W[jh * Fp + f]) * x[f];
                h[jh] = acc;
            }
            for (int f = 0; f < F; f++) {
                vn pre = splat_n(k.b[f]);
                for (int jh = 0; jh < H; jh++) pre += splat_n(k.W[jh * Fp + f]) * h[jh];
                vn d, gf, imp = splat_n(k.imp[f]);
                if (RELU) {
                    vni on = pre > 0;
                    d = (on ? pre : 0) - x[f];
                    gf = on ? d * imp : 0;
                } else {
                    d = pre - x[f];
                    gf = d * imp;
                }
                d = valid ? d : 0;
                gf = valid ? gf : 0;
                loss += d * d * imp;
                db[f] += gf;
                g[f] = gf;
            }
            for (int jh = 0; jh < H; jh++) {
                vn acc = {};
                for (int f = 0; f < F; f++) acc += splat_n(k.W[jh * Fp + f]) * g[f];
                gw[jh] = acc;
            }
            for (int jh = 0; jh < H; jh++)
                for (int f = 0; f < F; f++) {
                    dW[jh * F + f] += h[jh] * g[f];
                    dW[jh * F + f] += gw[jh] * x[f];
                }
        }
    }
    for (int jh = 0; jh < H; jh++)
        for (int f = 0; f < F; f++) k.dW[jh * Fp + f] = float(lane_sum(dW[jh * F + f]));
    for (int f = 0; f < F; f++) k.db[f] = lane_sum(db[f]);
    return lane_sum(loss);
}

template <bool RELU>
double narrow_grads_any(const Job& j, Scratch& k, const Shape& s, int inst, int i) {
    if (s.H == 2 && s.F == 5) return narrow_grads<RELU, 2, 5>(j, k, s, inst, i);
    if (s.H == 2 && s.F == 4) return narrow_grads<RELU, 2, 4>(j, k, s, inst, i);
    return narrow_grads<RELU, 0, 0>(j, k, s, inst, i);
}

// torch's fused Adam / AdamW step (aten's FusedAdamKernel) on the padded W and b, whose
// gradients are c·k.dW and c·k.db; t counts this step (1 for the first).
void adam_update(const Job& j, Scratch& k, const Shape& s, double lr, double t, float c) {
    const double bias_correction1 = 1 - std::pow(j.beta1, t);
    const double bias_correction2 = 1 - std::pow(j.beta2, t);
    const float step_size = float(lr / bias_correction1);
    const float bias_correction2_sqrt = float(std::sqrt(bias_correction2));
    const float beta1 = float(j.beta1), beta2 = float(j.beta2), eps = float(j.eps);
    const float grad_coef1 = float(1 - j.beta1), grad_coef2 = float(1 - j.beta2);
    const float decay = j.decoupled ? float(1 - lr * j.weight_decay) : 1.0f;
    const float l2 = j.decoupled ? 0.0f : float(j.weight_decay);
    auto update = [&](float& param, float& m, float& v, float grad) {
        if (j.weight_decay != 0) {
            if (j.decoupled)
                param *= decay;
            else
                grad += param * l2;
        }
        m = m * beta1 + grad * grad_coef1;
        v = v * beta2 + grad * grad * grad_coef2;
        param -= step_size * m / (std::sqrt(v) / bias_correction2_sqrt + eps);
    };
    for (int e = 0; e < s.H * s.Fp; e++) update(k.W[e], k.mW[e], k.vW[e], k.dW[e] * c);
    for (int f = 0; f < s.Fp; f++) update(k.b[f], k.mb[f], k.vb[f], float(k.db[f] * c));
}

// D_i = ‖W_i‖⁴ / W_iᵀ M W_i with M = W Wᵀ (hidden × hidden) for each of W's F features (W: H
// rows of Fp floats, zero past F), in double, as engine.geometry.dimensionality computes it
// (the sums in another order: the same D to rounding). The Trainer records D_i every few steps;
// here W is in cache and each instance on its own thread, where torch took 0.8 ms a record
// (3% of a 2000-step default run). A zero column gives 0.
void feature_dims(const float* W, int H, int F, int Fp, float* out) {
    typedef double vd __attribute__((vector_size(32)));
    typedef float vf4 __attribute__((vector_size(16), aligned(4)));
    auto at = [&](int h, int f) {  // 4 floats of row h from feature f, widened
        return __builtin_convertvector(*(const vf4*)(W + h * Fp + f), vd);
    };
    std::vector<double> M(size_t(H) * H), row(Fp), quad(Fp, 0.0), norm(Fp, 0.0);
    for (int h = 0; h < H; h++)
        for (int g = 0; g <= h; g++) {
            vd sum = {};
            for (int f = 0; f < Fp; f += 4) sum += at(h, f) * at(g, f);
            M[h * H + g] = M[g * H + h] = sum[0] + sum[1] + sum[2] + sum[3];
        }
    for (int h = 0; h < H; h++) {  // quad = Σ_h W[h] ∘ (M W)[h], norm = Σ_h W[h]²
        std::fill(row.begin(), row.end(), 0.0);
        for (int g = 0; g < H; g++)
            for (int f = 0; f < F; f++) row[f] += M[h * H + g] * W[g * Fp + f];
        for (int f = 0; f < F; f++) {
            const double w = W[h * Fp + f];
            quad[f] += w * row[f];
            norm[f] += w * w;
        }
    }
    for (int f = 0; f < F; f++) {
        const double d = norm[f] * norm[f] / (quad[f] + (norm[f] == 0));
        out[f] = float(std::min(d, 1.0));  // rounding can leave an isolated D a hair over 1
    }
}

// All of the call's steps for one instance.
template <bool RELU>
void run_instance(const Job& j, Scratch& k, const Shape& s, int inst) {
    const int H = s.H, F = s.F, Fp = s.Fp;
    auto pad_in = [&](float* dst, const float* src, int rows) {  // rows × F → rows × Fp
        for (int r = 0; r < rows; r++) {
            std::memcpy(dst + r * Fp, src + size_t(r) * F, F * sizeof(float));
            std::fill(dst + r * Fp + F, dst + (r + 1) * Fp, 0.0f);
        }
    };
    auto pad_out = [&](float* dst, const float* src, int rows, float scale) {
        for (int r = 0; r < rows; r++)
            for (int f = 0; f < F; f++) dst[size_t(r) * F + f] = src[r * Fp + f] * scale;
    };
    const size_t w0 = size_t(inst) * H * F, b0 = size_t(inst) * F;
    const bool stepping = j.lr != nullptr;
    pad_in(k.W, j.W + w0, H);
    pad_in(k.b, j.b + b0, 1);
    pad_in(k.imp, j.importance + b0, 1);
    pad_in(k.p, j.p + b0, 1);
    for (int f = 0; f < Fp; f++) k.rp[f] = reciprocal(k.p[f]);
    if (stepping) {
        pad_in(k.mW, j.exp_avg_W + w0, H);
        pad_in(k.vW, j.exp_avg_sq_W + w0, H);
        pad_in(k.mb, j.exp_avg_b + b0, 1);
        pad_in(k.vb, j.exp_avg_sq_b + b0, 1);
    }
    const double n = double(s.B) * F;
    const float c = float(2.0 / n);
    double mean_p = 0;
    for (int f = 0; f < F; f++) mean_p += j.p[b0 + f] / F;
    const bool sparse = !s.narrow && mean_p < SPARSE_P && s.Hp / L <= SPARSE_HV;
    const bool sparse_dw = sparse && mean_p < SPARSE_DW_P;
    double loss = 0;
    for (int i = 0; i < j.n_steps; i++) {
        std::fill(k.dW, k.dW + H * Fp, 0.0f);
        std::fill(k.db, k.db + Fp, 0.0);
        if (sparse) transpose_W(k, s);
        if (sparse_dw) std::fill(k.dWT, k.dWT + Fp * s.Hp, 0.0f);
        double sum = s.narrow ? narrow_grads_any<RELU>(j, k, s, inst, i)
                              : wide_grads<RELU>(j, k, s, inst, i, sparse, sparse_dw);
        if (sparse_dw) fold_dWT(k, s);
        loss += sum / n;
        if (stepping) adam_update(j, k, s, j.lr[i], double(*j.adam_step_W) + i + 1, c);
    }
    j.loss[inst] = float(loss);
    if (stepping) {
        pad_out(j.W + w0, k.W, H, 1.0f);
        pad_out(j.b + b0, k.b, 1, 1.0f);
        pad_out(j.exp_avg_W + w0, k.mW, H, 1.0f);
        pad_out(j.exp_avg_sq_W + w0, k.vW, H, 1.0f);
        pad_out(j.exp_avg_b + b0, k.mb, 1, 1.0f);
        pad_out(j.exp_avg_sq_b + b0, k.vb, 1, 1.0f);
        if (j.dims) feature_dims(k.W, H, F, Fp, j.dims + b0);
    } else {
        pad_out(j.dW + w0, k.dW, H, c);
        for (int f = 0; f < F; f++) j.db[b0 + f] = float(k.db[f] * c);
    }
}

}  // namespace

// Runs `job`; returns 0, or 1 if out of memory.
extern "C" int toygeom_train(const Job* job) {
    const Job& j = *job;
    const Shape s{j.hidden, j.feats, j.batch, (j.feats + L - 1) / L * L,
                  (j.hidden + L - 1) / L * L, j.hidden * j.feats <= NARROW};
    std::atomic<int> next{0};
    std::atomic<bool> failed{false};
    auto work = [&] {
        try {
            Scratch k(s);
            for (int i; (i = next++) < j.n_inst;)
                j.relu ? run_instance<true>(j, k, s, i) : run_instance<false>(j, k, s, i);
        } catch (...) {
            failed = true;
        }
    };
    std::vector<std::thread> helpers;
    const int n = std::max(1, std::min(j.n_threads, j.n_inst));
    try {
        for (int t = 1; t < n; t++) helpers.emplace_back(work);
    } catch (...) {  // could not start a thread: the threads we have do the work
    }
    work();
    for (auto& t : helpers) t.join();
    if (failed) return 1;
    if (j.lr) *j.adam_step_W += j.n_steps, *j.adam_step_b += j.n_steps;
    return 0;
}

// sparse_uniform (or, if `divided`, sparse_uniform_divided) on n uniforms u with one
// probability p, into x: for the tests, which check both against torch's division.
extern "C" void toygeom_sparse_uniform(const float* u, int64_t n, float p, float* x,
                                       int divided) {
    const vf pv = splat(p), y = splat(reciprocal(p));
    for (int64_t i = 0; i < n; i += L) {
        const int m = int(std::min<int64_t>(L, n - i));
        float in[L] = {}, out[L];
        std::memcpy(in, u + i, m * sizeof(float));
        const vf v = load(in);
        store(out, divided ? sparse_uniform_divided(v, pv) : sparse_uniform(v, pv, y));
        std::memcpy(x + i, out, m * sizeof(float));
    }
}

// engine.data's log_one_minus(u) (which = 0), cos_two_pi(u) (1), normal_magnitudes(u, v) (2)
// or square_root(u) (3) of n values, into out: for the tests, which check them against
// engine.data's over all 2²⁴ uniforms.
extern "C" void toygeom_normal_parts(const float* u, const float* v, int64_t n, float* out,
                                     int which) {
    for (int64_t i = 0; i < n; i += L) {  // L lanes, as place_packed computes them
        const int m = int(std::min<int64_t>(L, n - i));
        float a[L] = {}, b[L] = {}, r[L];
        std::memcpy(a, u + i, m * sizeof(float)), std::memcpy(b, v + i, m * sizeof(float));
        const vf x = load(a), y = load(b);
        store(r, which == 0   ? log_one_minus(x)
                 : which == 1 ? cos_two_pi(x)
                 : which == 2 ? normal_magnitudes(x, y)
                              : square_root(x));
        std::memcpy(out + i, r, m * sizeof(float));
    }
}

// What this build runs, for the tests and the bench: its vector width (L floats) and whether
// this CPU's uniform batches take sparse_uniform_divided (kDivide).
extern "C" int toygeom_lanes() { return L; }
extern "C" int toygeom_divides() { return kDivide; }
