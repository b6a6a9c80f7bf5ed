// The toy model's training step for one batch, fused: batch, forward, loss and closed-form
// gradients per instance, one batch tile at a time, so no (feats × batch) intermediate ever
// leaves the cache. The same math as `closed_form_grads` in engine/step.py:
//   h = W x, pre = Wᵀ h + b, D = act(pre) − x, G = D · act'(pre) · importance,
//   loss = mean(importance · D²), db = c Σ_batch G, dW = c (h Gᵀ + (W G) xᵀ), c = 2/(batch·feats).
//
// Layout: a tile holds T batch rows, each row the features padded with zeros to a multiple of
// 16 (one 512-bit vector). Padded features are inert (x = 0, W = 0, b = 0 → D = G = 0), so
// every vector loop runs over whole vectors. The five products are register-blocked:
//   h = W x and W G contract over features: 4 rows × 4 hidden dot products at a time, whose 16
//     vector accumulators are summed across lanes together (`sum_lanes`);
//   pre and dW are outer-product updates along the feature vectors (broadcast × vector FMAs).
// Written with GCC vector extensions (gcc, clang) rather than intrinsics: on a CPU without
// AVX-512 the compiler splits the vectors, slower but the same results.
//
// Threads take whole instances, so every instance is summed in one fixed order: the results
// do not depend on the number of threads or on scheduling.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

namespace {

constexpr int L = 16;  // floats per vector
constexpr int T = 32;  // batch rows per tile: a tile's x and G rows (2 × 32 × 208 floats) stay in L1/L2
typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
typedef uint64_t vu64 __attribute__((vector_size(64)));
typedef uint32_t vu32 __attribute__((vector_size(32)));

inline vf load(const float* p) {
    vf v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
inline vf splat(float s) { return vf{} + s; }

// v[j] summed over its lanes, for 16 vectors at once: lane j of the result is Σ v[j]. Each level
// adds the even and odd chunks of a pair of vectors (chunks of 8, 4, 2, 1 lanes), so the 16
// horizontal sums cost 15 two-vector shuffles-and-adds instead of 16 separate reductions.
inline vf sum_lanes(vf v[16]) {
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
    return __builtin_shufflevector(y[0], y[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                   28, 30) +
           __builtin_shufflevector(y[0], y[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27,
                                   29, 31);
}

// SplitMix64 as engine/rng.py: u = (mix64(counter·γ + key) >> 40) · 2⁻²⁴, for 8 counters.
inline vu32 hash24(vu64 counter, uint64_t key) {
    vu64 z = counter * 0x9E3779B97F4A7C15ull + key;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z = z ^ (z >> 31);
    return __builtin_convertvector(z >> 40, vu32);
}

struct Shape {
    int H, F, B, Fp;  // hidden, feats, batch, feats padded to a multiple of L
};

// One thread's buffers: one instance's padded parameters and one tile's rows.
struct Scratch {
    float *W, *b, *imp, *p;  // H × Fp, Fp, Fp, Fp
    float *x, *g;            // T × Fp: the tile's batch and G, batch-major
    float *h, *gw;           // T × H: h = W x and W G, batch-major
    float *dW, *db_tile;     // H × Fp, Fp
    double* db;              // Fp: db over the whole batch (summed in double: 1024+ terms)
    float* block;

    explicit Scratch(const Shape& s) {
        size_t Fp = s.Fp, H = s.H;
        size_t n = H * Fp + 4 * Fp + 2 * T * Fp + 2 * T * H + H * Fp + Fp + 2 * Fp + 16;
        block = static_cast<float*>(std::aligned_alloc(64, ((n * 4 + 63) / 64) * 64));
        if (!block) throw std::bad_alloc();
        float* q = block;
        auto take = [&q](size_t k) {
            float* r = q;
            q += (k + 15) / 16 * 16;  // keep every buffer 64-byte aligned
            return r;
        };
        W = take(H * Fp), b = take(Fp), imp = take(Fp), p = take(Fp);
        x = take(T * Fp), g = take(T * Fp), h = take(T * H), gw = take(T * H);
        dW = take(H * Fp), db_tile = take(Fp), db = reinterpret_cast<double*>(take(2 * Fp));
    }
    ~Scratch() { std::free(block); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
};

// out[t][j] = Σ_f A[t][f] W[j][f] for the RT × RJ block at (t0, j0); out has row stride H.
template <int RT, int RJ>
void dot_block(const float* A, const float* W, const Shape& s, float* out, int t0, int j0) {
    vf acc[16] = {};
    for (int f = 0; f < s.Fp; f += L) {
        vf a[RT], w[RJ];
        for (int i = 0; i < RT; i++) a[i] = load(A + (t0 + i) * s.Fp + f);
        for (int j = 0; j < RJ; j++) w[j] = load(W + (j0 + j) * s.Fp + f);
        for (int i = 0; i < RT; i++)
            for (int j = 0; j < RJ; j++) acc[i * RJ + j] += a[i] * w[j];
    }
    vf sums = sum_lanes(acc);
    for (int i = 0; i < RT; i++)
        for (int j = 0; j < RJ; j++) out[(t0 + i) * s.H + j0 + j] = sums[i * RJ + j];
}

template <int RT>
void dot_rows(const float* A, const float* W, const Shape& s, float* out, int t0) {
    int j0 = 0;
    for (; j0 + 4 <= s.H; j0 += 4) dot_block<RT, 4>(A, W, s, out, t0, j0);
    switch (s.H - j0) {
        case 3: dot_block<RT, 3>(A, W, s, out, t0, j0); break;
        case 2: dot_block<RT, 2>(A, W, s, out, t0, j0); break;
        case 1: dot_block<RT, 1>(A, W, s, out, t0, j0); break;
    }
}

// out (nt × H) = A (nt × Fp) Wᵀ: h = W x and W G for a tile, batch-major.
void dot_tile(const float* A, const float* W, const Shape& s, float* out, int nt) {
    int t0 = 0;
    for (; t0 + 4 <= nt; t0 += 4) dot_rows<4>(A, W, s, out, t0);
    switch (nt - t0) {
        case 3: dot_rows<3>(A, W, s, out, t0); break;
        case 2: dot_rows<2>(A, W, s, out, t0); break;
        case 1: dot_rows<1>(A, W, s, out, t0); break;
    }
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
        for (int j = 0; j < NF; j++) w[j] = load(k.W + hh * s.Fp + f0 + j * L);
        for (int i = 0; i < RT; i++) {
            vf hb = splat(k.h[(t0 + i) * s.H + hh]);
            for (int j = 0; j < NF; j++) acc[i][j] += hb * w[j];
        }
    }
    for (int j = 0; j < NF; j++) {
        vf imp = load(k.imp + f0 + j * L), db = load(k.db_tile + f0 + j * L);
        for (int i = 0; i < RT; i++) {
            vf pre = acc[i][j], x = load(k.x + (t0 + i) * s.Fp + f0 + j * L);
            vf d, g;
            if (RELU) {
                vi on = pre > 0;
                d = (on ? pre : 0) - x;
                g = on ? d * imp : 0;
            } else {
                d = pre - x;
                g = d * imp;
            }
            loss += d * d * imp;
            db += g;
            store(k.g + (t0 + i) * s.Fp + f0 + j * L, g);
        }
        store(k.db_tile + f0 + j * L, db);
    }
}

template <int RT, bool RELU>
void grad_rows(Scratch& k, const Shape& s, int t0, vf& loss) {
    int f0 = 0;
    for (; f0 + 4 * L <= s.Fp; f0 += 4 * L) grad_block<RT, 4, RELU>(k, s, t0, f0, loss);
    switch ((s.Fp - f0) / L) {
        case 3: grad_block<RT, 3, RELU>(k, s, t0, f0, loss); break;
        case 2: grad_block<RT, 2, RELU>(k, s, t0, f0, loss); break;
        case 1: grad_block<RT, 1, RELU>(k, s, t0, f0, loss); break;
    }
}

template <bool RELU>
void grad_tile(Scratch& k, const Shape& s, int nt, vf& loss) {
    int t0 = 0;
    for (; t0 + 4 <= nt; t0 += 4) grad_rows<4, RELU>(k, s, t0, loss);
    switch (nt - t0) {
        case 3: grad_rows<3, RELU>(k, s, t0, loss); break;
        case 2: grad_rows<2, RELU>(k, s, t0, loss); break;
        case 1: grad_rows<1, RELU>(k, s, t0, loss); break;
    }
}

// dW[h] += Σ_t h[t][h] G[t] + (W G)[t][h] x[t] for hidden rows h0.. and feature vectors f0..
template <int RH, int NF>
void dw_block(Scratch& k, const Shape& s, int h0, int f0, int nt) {
    vf acc[RH][NF];
    for (int i = 0; i < RH; i++)
        for (int j = 0; j < NF; j++) acc[i][j] = load(k.dW + (h0 + i) * s.Fp + f0 + j * L);
    for (int t = 0; t < nt; t++) {
        vf g[NF], x[NF];
        for (int j = 0; j < NF; j++) {
            g[j] = load(k.g + t * s.Fp + f0 + j * L);
            x[j] = load(k.x + t * s.Fp + f0 + j * L);
        }
        for (int i = 0; i < RH; i++) {
            vf hb = splat(k.h[t * s.H + h0 + i]), gwb = splat(k.gw[t * s.H + h0 + i]);
            for (int j = 0; j < NF; j++) acc[i][j] += hb * g[j] + gwb * x[j];
        }
    }
    for (int i = 0; i < RH; i++)
        for (int j = 0; j < NF; j++) store(k.dW + (h0 + i) * s.Fp + f0 + j * L, acc[i][j]);
}

template <int RH>
void dw_rows(Scratch& k, const Shape& s, int h0, int nt) {
    int f0 = 0;
    for (; f0 + 4 * L <= s.Fp; f0 += 4 * L) dw_block<RH, 4>(k, s, h0, f0, nt);
    switch ((s.Fp - f0) / L) {
        case 3: dw_block<RH, 3>(k, s, h0, f0, nt); break;
        case 2: dw_block<RH, 2>(k, s, h0, f0, nt); break;
        case 1: dw_block<RH, 1>(k, s, h0, f0, nt); break;
    }
}

void dw_tile(Scratch& k, const Shape& s, int nt) {
    int h0 = 0;
    for (; h0 + 4 <= s.H; h0 += 4) dw_rows<4>(k, s, h0, nt);
    switch (s.H - h0) {
        case 3: dw_rows<3>(k, s, h0, nt); break;
        case 2: dw_rows<2>(k, s, h0, nt); break;
        case 1: dw_rows<1>(k, s, h0, nt); break;
    }
}

// Row t of the tile: the uniform batch's row, bit for bit `generate_batch("uniform", ...)`:
// u from the counter of (inst, row, feat), x = u/p if u < p else 0. Padded features have p = 0.
void generate_row(float* x, const float* p, int Fp, uint64_t counter, uint64_t key) {
    const vu64 lane = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int f = 0; f < Fp; f += L) {
        vu64 c = lane + (counter + f);
        vu32 lo = hash24(c, key), hi = hash24(c + 8, key);
        vi bits = (vi)__builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                          14, 15);
        vf u = __builtin_convertvector(bits, vf) * 0x1p-24f, pf = load(p + f);
        store(x + f, u < pf ? u / pf : 0);
    }
}

struct Args {
    Shape s;
    const float *W, *b, *imp, *x, *p;
    uint64_t base, key;
    bool relu;
    float *loss, *dW, *db;
};

template <bool RELU>
void instance(const Args& a, Scratch& k, int inst) {
    const Shape& s = a.s;
    const int H = s.H, F = s.F, B = s.B, Fp = s.Fp;
    auto pad = [&](float* dst, const float* src) {
        std::memcpy(dst, src, F * sizeof(float));
        std::fill(dst + F, dst + Fp, 0.0f);
    };
    for (int hh = 0; hh < H; hh++) pad(k.W + hh * Fp, a.W + (size_t(inst) * H + hh) * F);
    pad(k.b, a.b + size_t(inst) * F);
    pad(k.imp, a.imp + size_t(inst) * F);
    if (!a.x) pad(k.p, a.p + size_t(inst) * F);
    std::fill(k.dW, k.dW + H * Fp, 0.0f);
    std::fill(k.db, k.db + Fp, 0.0);
    double loss = 0;
    for (int b0 = 0; b0 < B; b0 += T) {
        const int nt = std::min(T, B - b0);
        for (int t = 0; t < nt; t++) {
            const size_t row = size_t(inst) * B + b0 + t;  // the batch-major (inst, batch) row
            if (a.x)
                pad(k.x + t * Fp, a.x + row * F);
            else
                generate_row(k.x + t * Fp, k.p, Fp, a.base + row * F, a.key);
        }
        dot_tile(k.x, k.W, s, k.h, nt);  // h = W x
        std::fill(k.db_tile, k.db_tile + Fp, 0.0f);
        vf tile_loss = {};
        grad_tile<RELU>(k, s, nt, tile_loss);  // pre, D, G
        dot_tile(k.g, k.W, s, k.gw, nt);       // W G
        dw_tile(k, s, nt);                     // dW += h Gᵀ + (W G) xᵀ
        for (int f = 0; f < Fp; f++) k.db[f] += k.db_tile[f];
        for (int l = 0; l < L; l++) loss += tile_loss[l];
    }
    const double n = double(B) * F;
    const float c = float(2.0 / n);
    a.loss[inst] = float(loss / n);
    for (int hh = 0; hh < H; hh++)
        for (int f = 0; f < F; f++) a.dW[(size_t(inst) * H + hh) * F + f] = k.dW[hh * Fp + f] * c;
    for (int f = 0; f < F; f++) a.db[size_t(inst) * F + f] = float(k.db[f] * c);
}

}  // namespace

// loss (inst), dW (inst hidden feats), db (inst feats) for one batch; returns 0, or 1 if out of
// memory. The batch is x (inst batch feats) if given, else the uniform batch drawn from
// feature probabilities p (inst feats) with counters base + (inst·batch + row)·feats + feat.
extern "C" int toygeom_fused_step(int n_inst, int hidden, int feats, int batch, const float* W,
                                  const float* b, const float* importance, const float* x,
                                  const float* p, uint64_t base, uint64_t key, int relu,
                                  int n_threads, float* loss, float* dW, float* db) {
    const Args a{{hidden, feats, batch, (feats + L - 1) / L * L},
                 W, b, importance, x, p, base, key, relu != 0, loss, dW, db};
    std::atomic<int> next{0};
    std::atomic<bool> failed{false};
    auto work = [&] {
        try {
            Scratch k(a.s);
            for (int i; (i = next++) < n_inst;) a.relu ? instance<true>(a, k, i)
                                                       : instance<false>(a, k, i);
        } catch (...) {
            failed = true;
        }
    };
    std::vector<std::thread> helpers;
    const int n = std::max(1, std::min(n_threads, n_inst));
    try {
        for (int t = 1; t < n; t++) helpers.emplace_back(work);
    } catch (...) {  // could not start a thread: the threads we have do the work
    }
    work();
    for (auto& t : helpers) t.join();
    return failed ? 1 : 0;
}
