"""Feature geometry of W (inst hidden feats): pure functions, torch in, torch out.

Feature i of an instance is the column W[inst, :, i], Ŵ_i its unit vector. After Elhage et al. 2022
("Toy Models of Superposition") and ARENA's "Feature Geometry":

    ‖W‖²_F ≈ number of represented features       D* = d_hidden / ‖W‖²_F
    D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²  (j over all features, i included)
    interference_i = sqrt(Σ_{j≠i} (Ŵ_i·W_j)²)

Since Ŵ_i·W_i = ‖W_i‖, D_i = ‖W_i‖² / (‖W_i‖² + interference_i²): both come from one matrix,
P[i, j] = Ŵ_i·W_j (the projection of W_j onto feature i's direction), one bmm per call.

The geometry graph joins represented features that overlap; its connected components are the
tegum factors (polytopes in mutually orthogonal subspaces). A component of k features spanning
d dimensions with every D_i ≈ d/k is a uniform tight frame and gets its polytope's name.
`analyze` gathers everything, per feature, for a view or an export.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

# ‖W_i‖² above which a feature counts as represented (a node of the geometry graph). A learned
# feature has ‖W_i‖² ≈ 1 and xavier init gives ≈ 2·d_hidden / (n_features·(d_hidden + n_inst))
# (0.005 for the 200/20/20 run), so 0.1 sits far from both: a feature is a node once it is
# reconstructed at ≳ 10% strength.
REPRESENTED = 0.1

# |Ŵ_i·W_j| above which features i and j share an edge (either direction counts, so the graph is
# undirected). A projection of 0.1 adds only 0.01 to D_i's denominator (≈1 for a represented
# feature), below the spread of the named fractions, so weaker overlaps are noise rather than
# geometry; the smallest overlap inside the named polytopes is the square antiprism's
# (2/3)·cos 45° − 1/3 ≈ 0.138, so they stay connected.
EDGE_THRESHOLD = 0.1

# Singular values below this fraction of the largest don't count toward a component's rank. A tight
# frame has all its non-zero singular values equal, so anything this small is weight leaking into
# an unused direction, not a dimension the polytope uses.
RANK_RTOL = 0.1

# How far each member's D_i may sit from d/k for a component to get a polytope's name. Trained
# polytopes sit within ~0.02 of their line; a visibly irregular polygon is off by more.
NAME_TOL = 0.03
# The configuration of a lone represented feature whose D_i is short of 1 (configuration_name).
DIFFUSE = "diffuse (no strong represented partner)"


@dataclass(frozen=True, slots=True)
class NamedFraction:
    """A level of D_i seen in trained models and the configuration that produces it."""

    value: float
    label: str
    configuration: str


# Descending. k features forming a uniform tight frame in d dimensions have D_i = d/k each:
# simplices (k−1)/k, polygons 2/k, 3-D polyhedra 3/k. A fraction alone doesn't pin the
# configuration (1/3 is also three features on one line); `configuration_name` is the cross-check.
NAMED_FRACTIONS: tuple[NamedFraction, ...] = (
    NamedFraction(1.0, "1", "dedicated dimension"),
    NamedFraction(3 / 4, "3/4", "tetrahedron"),
    NamedFraction(2 / 3, "2/3", "triangle"),
    NamedFraction(1 / 2, "1/2", "antipodal pair"),
    NamedFraction(2 / 5, "2/5", "pentagon"),
    NamedFraction(3 / 8, "3/8", "square antiprism"),
    NamedFraction(1 / 3, "1/3", "hexagon"),
    NamedFraction(2 / 7, "2/7", "heptagon"),
    NamedFraction(0.0, "0", "not represented"),
)


@dataclass(frozen=True, slots=True)
class Partner:
    """Another feature j as seen from feature i: all three are signed."""

    index: int
    cosine: float  # Ŵ_i·Ŵ_j
    dot: float  # W_i·W_j
    projection: float  # Ŵ_i·W_j, what feature j adds to feature i's readout


@dataclass(frozen=True, slots=True)
class Component:
    """One tegum factor: represented features joined by overlaps above the edge threshold."""

    index: int
    members: tuple[int, ...]
    rank: int
    configuration: str


@dataclass(frozen=True, slots=True)
class FeatureGeometry:
    """One feature's measures. The nearest fraction is D_i's, and D_i ignores the column's own
    scale; whether the feature is represented at all is `component >= 0`."""

    index: int
    norm: float
    dimensionality: float
    interference: float
    nearest_fraction: str  # a NamedFraction label, e.g. "2/5"
    nearest_fraction_value: float
    fraction_distance: float
    configuration: str
    component: int  # -1 when not represented
    component_size: int  # 0 when not represented
    component_rank: int  # 0 when not represented
    partners: tuple[Partner, ...]


@dataclass(frozen=True, slots=True)
class InstanceGeometry:
    """One instance: its totals, every feature (in index order) and the graph's components."""

    index: int
    frobenius_sq: float
    dims_per_feature: float
    features: tuple[FeatureGeometry, ...]
    components: tuple[Component, ...]


def frobenius_sq(W: torch.Tensor) -> torch.Tensor:
    """‖W‖²_F per instance: W (inst hidden feats) -> (inst,)."""
    return _sq_norms(W).sum(-1)


def dims_per_feature(W: torch.Tensor) -> torch.Tensor:
    """D* = d_hidden / ‖W‖²_F: W (inst hidden feats) -> (inst,).

    An all-zero instance gives 0.0 (it spends no dimensions on anything, as a zero column has
    D_i = 0), so the result is always finite.
    """
    return dims_per_feature_of(frobenius_sq(W), W.shape[-2])


def feature_norms(W: torch.Tensor) -> torch.Tensor:
    """‖W_i‖: W (inst hidden feats) -> (inst feats)."""
    return _sq_norms(W) ** 0.5


def dimensionality(W: torch.Tensor) -> torch.Tensor:
    """D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)²: W (inst hidden feats) -> (inst feats), in [0, 1].

    A zero column gives exactly 0 (never NaN).

    Through the hidden × hidden Gram matrix M = W Wᵀ, as Σ_j (Ŵ_i·W_j)² = Ŵ_iᵀ M Ŵ_i, so
    D_i = ‖W_i‖⁴ / W_iᵀ M W_i: ~feats/hidden times fewer FLOPs than the feats × feats
    projections (the default run's W: 0.7 ms against 6.6, one thread). The trainer records it
    every few steps on the training thread. Float64 inside: nothing is subtracted, so a sum of
    the same positive terms in a new order moves D by rounding only.
    """
    W64 = W.double()
    sq_norms = _sq_norms(W64)
    quadratic = ((W64 @ W64.transpose(-1, -2) @ W64) * W64).sum(-2)  # W_iᵀ M W_i
    D = sq_norms * sq_norms / (quadratic + (sq_norms == 0))  # a zero column: 0/1
    return D.clamp(max=1.0).to(W.dtype)  # rounding can leave an isolated D a hair over 1


def interference(W: torch.Tensor) -> torch.Tensor:
    """sqrt(Σ_{j≠i} (Ŵ_i·W_j)²): W (inst hidden feats) -> (inst feats); 0 for a zero column."""
    return _interference_sq(_projections(W)).sqrt()


def nearest_fraction(
    D: torch.Tensor, represented: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The named fraction closest to each D: D (...) -> (values (...), label_index (...) int64,
    distance (...)). label_index indexes NAMED_FRACTIONS; a tie goes to the larger fraction.

    With `represented` (bool, D's shape; `analyze` passes ‖W_i‖² > REPRESENTED), the fraction 0
    ("not represented") is kept for the features that are not: a represented feature with a
    small D_i gets the nearest fraction above 0 and its distance from it, and the others get 0.
    """
    D = torch.as_tensor(D)
    dtype = D.dtype if D.is_floating_point() else torch.float64
    mask = None if represented is None else np.asarray(torch.as_tensor(represented).cpu(), bool)
    index, distance = _nearest(_float64_numpy(D), mask)
    return (
        torch.as_tensor(_FRACTION_VALUES[index], dtype=dtype, device=D.device),
        torch.as_tensor(index, dtype=torch.int64, device=D.device),
        torch.as_tensor(distance, dtype=dtype, device=D.device),
    )


def components(
    W: torch.Tensor, threshold: float = EDGE_THRESHOLD, represented: float = REPRESENTED
) -> torch.Tensor:
    """Connected components of each instance's geometry graph: W (inst hidden feats) ->
    labels (inst feats) int64.

    Nodes are features with ‖W_i‖² > represented; i and j are joined when |Ŵ_i·W_j| > threshold
    or |Ŵ_j·W_i| > threshold. Unrepresented features get -1; components are numbered 0, 1, ...
    in order of their lowest feature index.
    """
    _require_3d(W)
    W_np = _float64_numpy(W)
    labels = _component_labels(_projections(W_np), _sq_norms(W_np), threshold, represented)
    return torch.from_numpy(labels).to(W.device)


def configuration_name(size: int, rank: int, dims: Sequence[float], tol: float = NAME_TOL) -> str:
    """Name of a component of `size` features spanning `rank` dimensions, whose members have
    dimensionalities `dims`.

    It is named for a polytope only when every D_i is within tol of rank/size, i.e. the members
    form a uniform tight frame: (1,1) dedicated dimension, (1,2) antipodal pair, (2,k) k-gon
    (triangle, pentagon, ...), (k−1,k) simplex (tetrahedron, ...), (3,8) square antiprism; other
    uniform ones are "uniform (k features in d dims)", anything else "mixed (...)", except a lone
    feature whose D_i is short of 1: no represented feature overlaps it past the graph's
    threshold, yet weak overlaps (or unrepresented features, early in training) share its
    dimension, "diffuse (no strong represented partner)". D_i sees lines,
    not arrows, so names hold up to per-feature sign; and they name the regular polytope, the one
    training finds, though for some (d,k) (e.g. (2,5)) other uniform tight frames exist.
    """
    if len(dims) != size:
        raise ValueError(f"configuration_name: {len(dims)} dimensionalities for {size} features")
    if size == 0 or rank == 0:
        return "not represented"
    counts = f"{size} feature{'s' * (size > 1)} in {rank} dim{'s' * (rank > 1)}"
    if any(abs(d - rank / size) > tol for d in dims):
        return DIFFUSE if size == 1 else f"mixed ({counts})"
    return _polytope_name(rank, size) or f"uniform ({counts})"


def overlap_partners(
    W_inst: torch.Tensor, feature: int, k: int = 5, min_abs: float = 0.0
) -> list[Partner]:
    """The features that overlap `feature` most, for ONE instance: W_inst (hidden feats).

    Other features j ranked by |Ŵ_i·W_j| descending (ties to the lower index), at most k of them,
    only those with |Ŵ_i·W_j| > min_abs; a zero column has none.
    """
    if W_inst.ndim != 2:
        raise ValueError(f"overlap_partners: W_inst must be (hidden feats), not {W_inst.shape}")
    if not 0 <= feature < W_inst.shape[1]:
        raise IndexError(f"overlap_partners: feature {feature} of {W_inst.shape[1]}")
    if k < 0 or min_abs < 0:
        raise ValueError("overlap_partners: k and min_abs must be >= 0")
    W = _float64_numpy(W_inst)[None]
    rows = _projections(W)[:, feature : feature + 1]
    norms = _sq_norms(W) ** 0.5
    return list(_partner_table(rows, np.array([feature]), norms, k, min_abs)[0][0])


def analyze(W: torch.Tensor, k_partners: int = 5) -> list[InstanceGeometry]:
    """Norms, D_i, interference, nearest fraction, component and configuration, and the top
    k_partners partners of every feature of every instance: W (inst hidden feats).

    Works on a float64 numpy copy (see `Array` below for why numpy). Vectorised over instances
    and features; the Python loops only walk components and build the result objects. Raises
    ValueError for a W with non-finite entries: a diverged run has no geometry.
    """
    _require_3d(W)
    if k_partners < 0:
        raise ValueError("analyze: k_partners must be >= 0")
    W = _float64_numpy(W)
    if not np.isfinite(W).all():
        raise ValueError("analyze: W has non-finite entries")
    P, sq_norms = _projections(W), _sq_norms(W)
    interference_sq = _interference_sq(P)
    dims = _dimensionality(sq_norms, interference_sq)
    frob = sq_norms.sum(-1)
    dstar = dims_per_feature_of(frob, W.shape[-2])
    labels = _component_labels(P, sq_norms, EDGE_THRESHOLD, REPRESENTED)
    norms = np.sqrt(sq_norms)
    partners = _partner_table(P, np.arange(W.shape[-1]), norms, k_partners, 0.0)
    per_feature = [  # Python lists: far quicker to walk than numpy scalars
        a.tolist()
        for a in (norms, dims, np.sqrt(interference_sq), labels, *_nearest(dims, labels >= 0))
    ]

    result = []
    for inst in range(W.shape[0]):
        comps = _describe_components(W[inst], labels[inst], dims[inst])
        features = []
        for i, (norm, dim, interf, label, fraction, distance) in enumerate(
            zip(*(values[inst] for values in per_feature), strict=True)
        ):
            comp = comps[label] if label >= 0 else None
            features.append(
                FeatureGeometry(
                    index=i,
                    norm=norm,
                    dimensionality=dim,
                    interference=interf,
                    nearest_fraction=NAMED_FRACTIONS[fraction].label,
                    nearest_fraction_value=NAMED_FRACTIONS[fraction].value,
                    fraction_distance=distance,
                    configuration=comp.configuration if comp else "not represented",
                    component=label,
                    component_size=len(comp.members) if comp else 0,
                    component_rank=comp.rank if comp else 0,
                    partners=partners[inst][i],
                )
            )
        result.append(
            InstanceGeometry(inst, float(frob[inst]), float(dstar[inst]), tuple(features), comps)
        )
    return result


def _require_3d(W: torch.Tensor) -> None:
    if W.ndim != 3:
        raise ValueError(f"W must be (inst hidden feats), got shape {tuple(W.shape)}")


_FRACTION_VALUES = np.array([f.value for f in NAMED_FRACTIONS])


def _nearest(D: np.ndarray, represented: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(label_index, distance) of the closest named fraction: D (...) -> both (...).
    argmin takes the first of equals, so a tie goes to the larger fraction. Where `represented`
    is given, a represented D skips 0 and the rest take 0 (see `nearest_fraction`)."""
    distances = np.abs(D[..., None] - _FRACTION_VALUES)
    if represented is not None:
        zero = _FRACTION_VALUES == 0
        distances = np.where(represented[..., None] != zero, distances, np.inf)
    index = distances.argmin(axis=-1)
    return index, np.abs(D - _FRACTION_VALUES[index])


def _float64_numpy(W: torch.Tensor) -> np.ndarray:
    """A float64 numpy copy, from any device and float dtype."""
    W = W.detach().cpu()
    W = W if W.dtype in (torch.float32, torch.float64) else W.double()
    return W.numpy().astype(np.float64)


# The helpers below use only operators torch tensors and numpy arrays share (Array is either),
# so the public functions run them in torch on any device while `analyze` runs them in numpy:
# single-threaded, it doesn't fight a training loop for torch's thread pool (with both cores busy,
# torch's parallel kernels made analyze 3-5x slower).
Array = TypeVar("Array", torch.Tensor, np.ndarray)


def _sq_norms(W: Array) -> Array:
    """‖W_i‖²: (inst hidden feats) -> (inst feats)."""
    return (W * W).sum(-2)


def dims_per_feature_of(frob: Array, d_hidden: int) -> Array:
    """D* = d_hidden / ‖W‖²_F from ‖W‖²_F (inst,) -> (inst,), numpy or torch: an all-zero
    instance's is d_hidden·0 / 1 = 0, as dims_per_feature says; NaN (nothing logged) stays NaN."""
    return d_hidden * (frob > 0) / (frob + (frob == 0))


def _projections(W: Array) -> Array:
    """P[i, j] = Ŵ_i·W_j: W (inst hidden feats) -> (inst feats feats). A zero column's row is 0."""
    norms = _sq_norms(W) ** 0.5
    W_hat = W / (norms + (norms == 0))[..., None, :]  # divide a zero column by 1
    return W_hat.swapaxes(-1, -2) @ W


def _interference_sq(P: Array) -> Array:
    """Σ_{j≠i} P[i, j]²: (inst feats feats) -> (inst feats). Zeroing the diagonal, rather than
    subtracting it, keeps full precision when the interference is tiny."""
    sq = P * P
    diagonal = list(range(P.shape[-1]))
    sq[..., diagonal, diagonal] = 0.0
    return sq.sum(-1)


def _dimensionality(sq_norms: Array, interference_sq: Array) -> Array:
    """D_i = ‖W_i‖² / (‖W_i‖² + interference_i²): both (inst feats) -> (inst feats). A zero
    column has interference 0 too, so the + (sq_norms == 0) turns its 0/0 into 0/1."""
    return sq_norms / (sq_norms + interference_sq + (sq_norms == 0))


def _component_labels(
    P: np.ndarray, sq_norms: np.ndarray, threshold: float, represented: float
) -> np.ndarray:
    """P (inst feats feats), sq_norms (inst feats) -> labels (inst feats) int64, -1 off-graph."""
    strong = np.abs(P) > threshold
    edges = strong | strong.swapaxes(-1, -2)
    nodes = sq_norms > represented
    labels = np.empty(nodes.shape, dtype=np.int64)
    for inst in range(len(nodes)):
        labels[inst] = _label_graph(edges[inst], nodes[inst])
    return labels


def _label_graph(edges: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Breadth-first search, one frontier a step: edges (feats feats) bool, nodes (feats,) bool;
    edges to or from a non-node don't count. Seeds go in index order, so component c's lowest
    member is lower than component c+1's."""
    labels = np.full(nodes.shape, -1, dtype=np.int64)
    next_label = 0
    for seed in np.flatnonzero(nodes):
        if labels[seed] >= 0:
            continue
        members = np.zeros(nodes.shape, dtype=bool)
        members[seed] = True
        frontier = members.copy()
        while frontier.any():
            frontier = edges[frontier].any(axis=0) & nodes & ~members
            members |= frontier
        labels[members] = next_label
        next_label += 1
    return labels


def _describe_components(
    W: np.ndarray, labels: np.ndarray, dims: np.ndarray
) -> tuple[Component, ...]:
    """One instance: W (hidden feats), labels (feats,), dims (feats,) -> its components."""
    result = []
    for c in range(int(labels.max(initial=-1)) + 1):
        members = np.flatnonzero(labels == c)
        rank = 1 if len(members) == 1 else _numerical_rank(W[:, members])
        name = configuration_name(len(members), rank, dims[members].tolist())
        result.append(Component(c, tuple(members.tolist()), rank, name))
    return tuple(result)


def _numerical_rank(vectors: np.ndarray) -> int:
    """Singular values above RANK_RTOL × the largest: vectors (hidden members) -> rank."""
    s = np.linalg.svd(vectors, compute_uv=False)
    return int((s > RANK_RTOL * s[0]).sum()) if s[0] > 0 else 0


def _polytope_name(rank: int, size: int) -> str | None:
    """The regular polytope whose k = size vertices are a uniform tight frame in d = rank dims."""
    if rank == 1:
        return _ON_A_LINE.get(size, f"{size} features on a line")
    if rank == 2:
        return _POLYGONS.get(size, f"{size}-gon")
    if (rank, size) == (3, 8):
        return "square antiprism"
    if size == rank + 1:
        return "tetrahedron" if rank == 3 else f"{rank}-simplex"
    return None


_ON_A_LINE = {1: "dedicated dimension", 2: "antipodal pair"}
_POLYGONS = {3: "triangle", 4: "square", 5: "pentagon", 6: "hexagon", 7: "heptagon", 8: "octagon"}


def _partner_table(
    P: np.ndarray, own: np.ndarray, norms: np.ndarray, k: int, min_abs: float
) -> list[list[tuple[Partner, ...]]]:
    """Partners of every row: P (inst rows feats) rows of Ŵ_i·W_j, own (rows,) each row's feature,
    norms (inst feats) -> [inst][row] partners, as `overlap_partners` describes them."""
    order = _partner_order(P, own, k)
    projection = np.take_along_axis(P, order, axis=-1)
    norm_j = norms[np.arange(len(norms))[:, None, None], order]
    cosine = projection / np.where(norm_j > 0, norm_j, 1.0)  # a zero W_j has projection 0
    dot = projection * norms[:, own][..., None]
    # Sorted by |projection| with the row's own feature last, so the kept ones are a prefix.
    n_kept = ((np.abs(projection) > min_abs) & (order != own[:, None])).sum(axis=-1)
    fields = [a.tolist() for a in (order, cosine, dot, projection, n_kept)]
    return [
        [
            tuple(map(Partner, j[:n], c[:n], d[:n], p[:n]))
            for j, c, d, p, n in zip(*inst, strict=True)
        ]
        for inst in zip(*fields, strict=True)
    ]


def _partner_order(P: np.ndarray, own: np.ndarray, k: int) -> np.ndarray:
    """Columns of the k largest |P| per row, best first, ties to the lower index, the row's own
    feature last: P (inst rows feats), own (rows,) -> (inst rows k).

    A partial sort (argpartition) is 4x faster than sorting whole rows; only rows with a tie
    across the k-th place, where it would pick arbitrarily, get a full stable sort.
    """
    key = -np.abs(P)
    key[..., np.arange(len(own)), own] = 1.0
    k = min(k, key.shape[-1])
    if k == 0:
        return np.zeros(key.shape[:-1] + (0,), dtype=np.int64)
    top = np.argpartition(key, k - 1, axis=-1)[..., :k]
    kth = np.take_along_axis(key, top, axis=-1).max(axis=-1, keepdims=True)
    tied = (key <= kth).sum(axis=-1) > k
    if tied.any():
        top[tied] = np.argsort(key[tied], axis=-1, kind="stable")[:, :k]
    top.sort(axis=-1)  # index order first, so the stable sort below breaks ties by index
    by_key = np.argsort(np.take_along_axis(key, top, axis=-1), axis=-1, kind="stable")
    return np.take_along_axis(top, by_key, axis=-1)
