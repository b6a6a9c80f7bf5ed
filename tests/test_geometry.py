"""engine.geometry on exact polytopes (where every answer is known) and on random W."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from polytopes import antipodal_pair, orthogonal, polygon, square_antiprism, tegum, tetrahedron

from engine.geometry import (
    NAMED_FRACTIONS,
    analyze,
    components,
    configuration_name,
    dimensionality,
    dims_per_feature,
    feature_norms,
    frobenius_sq,
    interference,
    nearest_fraction,
    overlap_partners,
)

# (fixture, D of every feature, nearest-fraction label, configuration, rank)
POLYTOPES = {
    "orthogonal": (orthogonal(3), 1.0, "1", "dedicated dimension", 1),
    "antipodal": (antipodal_pair(), 1 / 2, "1/2", "antipodal pair", 1),
    "triangle": (polygon(3), 2 / 3, "2/3", "triangle", 2),
    "tetrahedron": (tetrahedron(), 3 / 4, "3/4", "tetrahedron", 3),
    "pentagon": (polygon(5), 2 / 5, "2/5", "pentagon", 2),
    "antiprism": (square_antiprism(), 3 / 8, "3/8", "square antiprism", 3),
}


def naive_dimensionality(W: torch.Tensor) -> torch.Tensor:
    """The definition, one feature at a time: W (inst hidden feats) -> (inst feats)."""
    out = torch.zeros(W.shape[0], W.shape[2], dtype=W.dtype)
    for k in range(W.shape[0]):
        for i in range(W.shape[2]):
            w_i = W[k, :, i]
            if w_i.norm() == 0:
                continue
            w_hat = w_i / w_i.norm()
            out[k, i] = w_i.norm() ** 2 / sum((w_hat @ W[k, :, j]) ** 2 for j in range(W.shape[2]))
    return out


def random_W(seed: int = 0, shape: tuple[int, int, int] = (4, 6, 15)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("name", POLYTOPES)
def test_polytope_alone_in_a_bigger_space(name: str) -> None:
    vectors, D, label, configuration, rank = POLYTOPES[name]
    W, (placed,) = tegum([vectors], d_hidden=10, n_dead=2)
    (g,) = analyze(W[None])
    dead = sorted(set(range(W.shape[1])) - set(placed.tolist()))
    for i in placed:
        f = g.features[i]
        assert f.dimensionality == pytest.approx(D, abs=1e-9)
        assert (f.nearest_fraction, f.fraction_distance) == (label, pytest.approx(0, abs=1e-9))
        assert f.norm == pytest.approx(1.0)
        assert f.configuration == configuration
        assert f.component_rank == rank
        assert f.component_size == (1 if name == "orthogonal" else vectors.shape[1])
    for i in dead:
        f = g.features[i]
        assert (f.dimensionality, f.component, f.configuration) == (0.0, -1, "not represented")
        assert (f.nearest_fraction, f.partners) == ("0", ())
    assert g.frobenius_sq == pytest.approx(vectors.shape[1])
    assert g.dims_per_feature == pytest.approx(10 / vectors.shape[1])


def test_tegum_product_splits_into_its_factors() -> None:
    named = ["pentagon", "tetrahedron", "antipodal pair", "triangle", "square antiprism"]
    blocks = [polygon(5), tetrahedron(), antipodal_pair(), polygon(3), square_antiprism()]
    W, placed = tegum([*blocks, orthogonal(2)], d_hidden=16, n_dead=3, seed=1)
    (g,) = analyze(W[None])
    labels = components(W[None])[0]

    # One component per polytope (the two orthogonal features are one each), numbered in order
    # of their lowest feature; features of different factors never share a label.
    *polytopes, dedicated = placed
    by_first = sorted(polytopes + [dedicated[:1], dedicated[1:]], key=lambda p: p[0])
    for expected_label, members in enumerate(by_first):
        assert labels[members].tolist() == [expected_label] * len(members)
    assert [c.members for c in g.components] == [tuple(p.tolist()) for p in by_first]
    assert int((labels == -1).sum()) == 3

    names = {tuple(p.tolist()): name for p, name in zip(polytopes, named, strict=True)}
    for c in g.components:
        dims = [g.features[i].dimensionality for i in c.members]
        assert c.configuration == names.get(c.members, "dedicated dimension")
        # a tight frame uses its whole span: Σ D_i = rank
        assert sum(dims) == pytest.approx(c.rank)
    assert sum(f.dimensionality for f in g.features) == pytest.approx(2 + 3 + 1 + 2 + 3 + 2)


def test_instances_are_independent() -> None:
    W = torch.stack(
        [
            tegum([polygon(5)], d_hidden=4, n_dead=1, seed=2)[0],
            tegum([tetrahedron(), orthogonal(1)], d_hidden=4, n_dead=1, seed=None)[0],
        ]
    )
    g0, g1 = analyze(W)
    assert {f.configuration for f in g0.features} == {"pentagon", "not represented"}
    expected = ["tetrahedron"] * 4 + ["dedicated dimension", "not represented"]
    assert [f.configuration for f in g1.features] == expected
    assert dimensionality(W)[1].tolist() == pytest.approx([0.75] * 4 + [1.0, 0.0])


def test_triangular_bipyramid_is_a_triangle_and_an_antipodal_pair() -> None:
    # The paper's 3 × 2/3 + 2 × 1/2: the bipyramid is the tegum product of its two factors.
    W, (triangle, pair) = tegum([polygon(3), antipodal_pair()], d_hidden=3)
    (g,) = analyze(W[None])
    assert [g.features[i].configuration for i in triangle] == ["triangle"] * 3
    assert [g.features[i].configuration for i in pair] == ["antipodal pair"] * 2
    assert len(g.components) == 2


def test_irregular_pentagon_is_not_called_a_pentagon() -> None:
    vectors = polygon(5)
    vectors[:, 0] = [math.cos(0.3), math.sin(0.3)]  # one vertex moved by 17°
    W, (placed,) = tegum([vectors], d_hidden=6)
    (g,) = analyze(W[None])
    f = g.features[placed[0]]
    assert (f.component_size, f.component_rank) == (5, 2)
    assert f.configuration == "mixed (5 features in 2 dims)"


def test_slightly_noisy_pentagon_is_still_a_pentagon() -> None:
    W, (placed,) = tegum([polygon(5)], d_hidden=8)
    W = W + 0.01 * torch.randn(W.shape, generator=torch.Generator().manual_seed(3), dtype=W.dtype)
    (g,) = analyze(W[None])
    f = g.features[placed[0]]
    assert (f.configuration, f.component_rank, f.nearest_fraction) == ("pentagon", 2, "2/5")
    assert 0 < f.fraction_distance < 0.02


def test_zero_columns_and_an_all_zero_instance_give_zeros_not_nan() -> None:
    W = random_W(shape=(2, 5, 6))
    W[0, :, 2] = 0
    W[1] = 0
    for measure in (dimensionality, interference, feature_norms):
        values = measure(W)
        assert torch.isfinite(values).all()
        assert values[0, 2] == 0 and (values[1] == 0).all()
    assert torch.isfinite(dims_per_feature(W)).all()
    assert dims_per_feature(W)[1] == 0.0
    assert frobenius_sq(W)[1] == 0.0
    assert components(W)[1].tolist() == [-1] * 6
    assert overlap_partners(W[0], 2) == []
    g0, g1 = analyze(W)
    assert g0.features[2].partners == () and g0.features[2].configuration == "not represented"
    assert all(p.index != 2 for f in g0.features for p in f.partners)
    assert g1.components == () and g1.dims_per_feature == 0.0


def test_analyze_refuses_a_diverged_W() -> None:
    W = random_W()
    W[2, 1, 3] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        analyze(W)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_random_W_dimensionality_bounds(dtype: torch.dtype) -> None:
    W = random_W(seed=4, shape=(6, 5, 12)).to(dtype)
    D = dimensionality(W)
    assert D.dtype == dtype and D.shape == (6, 12)
    assert ((D >= 0) & (D <= 1)).all()
    rank = torch.linalg.matrix_rank(W.double())
    assert (D.double().sum(dim=1) <= rank + 1e-5).all()


def test_dimensionality_is_scale_and_sign_invariant() -> None:
    W = random_W(seed=5)
    signs = torch.tensor([1.0, -1.0] * 7 + [-1.0], dtype=W.dtype)
    torch.testing.assert_close(dimensionality(3.7 * W), dimensionality(W))
    torch.testing.assert_close(dimensionality(1e-3 * W), dimensionality(W))
    torch.testing.assert_close(dimensionality(W * signs), dimensionality(W))
    torch.testing.assert_close(interference(W * signs), interference(W))


def test_dimensionality_matches_the_definition() -> None:
    W = random_W(seed=6)
    W[1, :, 3] = 0
    torch.testing.assert_close(dimensionality(W), naive_dimensionality(W))
    # interference² is the denominator's off-diagonal part
    expected = feature_norms(W) ** 2 / dimensionality(W).clamp_min(1e-300) - feature_norms(W) ** 2
    torch.testing.assert_close(interference(W) ** 2, expected.where(feature_norms(W) > 0, 0.0))


def test_partners_rank_by_projection_and_keep_signs() -> None:
    # Feature 0 = 2·e1. Feature 1 at 60° (norm 3), feature 2 opposite (norm 1), 3 orthogonal.
    W = torch.tensor([[2.0, 1.5, -1.0, 0.0], [0.0, 1.5 * math.sqrt(3), 0.0, 1.0]])
    first, second = overlap_partners(W, 0)
    assert first.index == 1
    assert first.projection == pytest.approx(1.5) and first.cosine == pytest.approx(0.5)
    assert first.dot == pytest.approx(3.0)
    assert second.index == 2
    assert (second.cosine, second.projection, second.dot) == pytest.approx((-1.0, -1.0, -2.0))
    assert overlap_partners(W, 0, k=1) == [first]
    assert overlap_partners(W, 0, min_abs=1.2) == [first]


def test_pentagon_partners_are_the_far_vertices_first() -> None:
    W = torch.from_numpy(polygon(5))
    partners = overlap_partners(W, 0)
    # vertices 2 and 3 are 144° away (cosine −0.81), 1 and 4 are 72° away (+0.31)
    assert {p.index for p in partners[:2]} == {2, 3}
    assert {p.index for p in partners[2:]} == {1, 4}
    assert [p.cosine for p in partners] == pytest.approx(
        [math.cos(4 * math.pi / 5)] * 2 + [math.cos(2 * math.pi / 5)] * 2
    )
    (g,) = analyze(W[None], k_partners=2)
    assert {p.index for p in g.features[0].partners} == {2, 3}


def test_partner_ties_go_to_the_lower_index() -> None:
    W = torch.tensor([[1.0, 0.5, -0.5, 0.5, 0.25], [0.0, 1.0, 2.0, -1.0, 0.0]])
    assert [p.index for p in overlap_partners(W, 0)] == [1, 2, 3, 4]
    assert [p.index for p in overlap_partners(W, 0, k=2)] == [1, 2]
    # twelve features all projecting ±0.5 onto feature 0: the first five win
    W = torch.tensor([[1.0] + [0.5, -0.5] * 6, [0.0] + list(range(1, 13))])
    assert [p.index for p in overlap_partners(W, 0)] == [1, 2, 3, 4, 5]


def test_antipodal_partner() -> None:
    W, (pair,) = tegum([antipodal_pair()], d_hidden=4, n_dead=1)
    (g,) = analyze(W[None])
    i, j = pair.tolist()
    (partner,) = g.features[i].partners
    assert partner.index == j
    assert (partner.cosine, partner.projection, partner.dot) == pytest.approx((-1.0, -1.0, -1.0))


def test_components_thresholds() -> None:
    # Features 0 and 1 overlap by 0.05 (too little), 1 and 2 by 0.3; feature 3 is tiny. Feature 4
    # (‖W_4‖ = 0.35, at cosine 0.25 to feature 0) projects only 0.0875 onto feature 0, but feature
    # 0 projects 0.25 onto it: one direction is enough for an edge.
    W = torch.zeros(1, 5, 5, dtype=torch.float64)
    W[0, :, 0] = torch.tensor([1.0, 0, 0, 0, 0])
    W[0, :, 1] = torch.tensor([0.05, 1.0, 0, 0, 0])
    W[0, :, 2] = torch.tensor([0, 0.3, 1.0, 0, 0])
    W[0, :, 3] = torch.tensor([0, 0, 0, 0.2, 0])  # ‖W_3‖² = 0.04
    W[0, :, 4] = 0.35 * torch.tensor([0.25, 0, 0, 0, math.sqrt(1 - 0.25**2)])
    assert components(W).tolist() == [[0, 1, 1, -1, 0]]
    assert components(W, threshold=0.01).tolist() == [[0, 0, 0, -1, 0]]
    assert components(W, threshold=0.2).tolist() == [[0, 1, 1, -1, 0]]
    assert components(W, threshold=0.3).tolist() == [[0, 1, 2, -1, 3]]
    assert components(W, represented=0.01).tolist() == [[0, 1, 1, 2, 0]]
    # An unrepresented feature is no bridge: feature 5, tiny, overlaps both 0 and 2.
    W5 = torch.cat([W, 0.2 * (W[:, :, :1] + W[:, :, 2:3])], dim=2)
    assert components(W5).tolist() == [[0, 1, 1, -1, 0, -1]]


def test_configuration_names() -> None:
    assert configuration_name(1, 1, [1.0]) == "dedicated dimension"
    assert configuration_name(5, 2, [0.4] * 5) == "pentagon"
    assert configuration_name(6, 2, [1 / 3] * 6) == "hexagon"
    assert configuration_name(9, 2, [2 / 9] * 9) == "9-gon"
    assert configuration_name(5, 4, [0.8] * 5) == "4-simplex"
    assert configuration_name(6, 3, [0.5] * 6) == "uniform (6 features in 3 dims)"
    # right size and rank, wrong D: not a pentagon
    assert configuration_name(5, 2, [0.4, 0.4, 0.4, 0.5, 0.3]) == "mixed (5 features in 2 dims)"
    assert configuration_name(5, 3, [2 / 3] * 3 + [0.5] * 2) == "mixed (5 features in 3 dims)"
    # alone in its component (no overlap over the threshold), yet sharing its dimension
    assert configuration_name(1, 1, [0.8]) == "diffuse (no strong represented partner)"
    assert configuration_name(0, 0, []) == "not represented"
    with pytest.raises(ValueError):
        configuration_name(2, 1, [0.5])


def test_named_fractions_agree_with_configuration_names() -> None:
    values = [f.value for f in NAMED_FRACTIONS]
    assert values == sorted(values, reverse=True)
    by_label = {f.label: f for f in NAMED_FRACTIONS}
    for label, (d, k) in {
        "1": (1, 1),
        "3/4": (3, 4),
        "2/3": (2, 3),
        "1/2": (1, 2),
        "2/5": (2, 5),
        "3/8": (3, 8),
        "1/3": (2, 6),
        "2/7": (2, 7),
    }.items():
        assert by_label[label].value == pytest.approx(d / k)
        assert configuration_name(k, d, [d / k] * k) == by_label[label].configuration
    assert by_label["0"].configuration == "not represented"


def test_nearest_fraction_is_vectorised() -> None:
    D = torch.tensor([[1.0, 0.74, 0.41], [0.02, 0.5, 0.3]])
    values, index, distance = nearest_fraction(D)
    assert values.shape == index.shape == distance.shape == D.shape
    assert [[NAMED_FRACTIONS[i].label for i in row] for row in index.tolist()] == [
        ["1", "3/4", "2/5"],
        ["0", "1/2", "2/7"],
    ]
    torch.testing.assert_close(distance, (D - values).abs())
    assert index.dtype == torch.int64 and values.dtype == distance.dtype == torch.float32
    value, index, distance = nearest_fraction(torch.tensor(0.7, dtype=torch.float64))
    assert (float(value), int(index), float(distance)) == pytest.approx((2 / 3, 2, 0.7 - 2 / 3))


def test_nearest_fraction_keeps_0_for_features_not_represented() -> None:
    # "0" is the fraction of "not represented": a represented feature with a small D_i takes the
    # nearest fraction above it, and a feature that is not takes 0 whatever its D_i.
    D = torch.tensor([0.1, 0.1, 0.9, 0.5], dtype=torch.float64)
    values, index, distance = nearest_fraction(D, represented=torch.tensor([1, 0, 0, 1]).bool())
    assert [NAMED_FRACTIONS[i].label for i in index.tolist()] == ["2/7", "0", "0", "1/2"]
    torch.testing.assert_close(distance, (D - values).abs())


def test_a_represented_feature_with_a_small_D_is_not_labelled_0() -> None:
    # 20 unit vectors around a plane: all represented, D_i = 2/20 = 0.1, nearer 0 than 2/7.
    angles = torch.arange(20, dtype=torch.float64) * (2 * math.pi / 20)
    W = torch.stack([angles.cos(), angles.sin()])[None]
    (g,) = analyze(W)
    for f in g.features:
        assert f.dimensionality == pytest.approx(0.1)
        assert f.component >= 0 and f.configuration != "not represented"
        assert (f.nearest_fraction, f.fraction_distance) == ("2/7", pytest.approx(2 / 7 - 0.1))


def test_analyze_on_the_default_shape() -> None:
    # The default run's shape: 20 instances × 200 features in 20 dims (speed: toygeom-tui bench).
    W = torch.randn(20, 20, 200, generator=torch.Generator().manual_seed(7)) / math.sqrt(20)
    geometries = analyze(W)
    assert [g.index for g in geometries] == list(range(20))
    assert all(len(g.features) == 200 for g in geometries)
    assert all(len(f.partners) == 5 for f in geometries[0].features)


def test_analyze_matches_the_tensor_functions() -> None:
    W = random_W(seed=8).float()
    gs = analyze(W, k_partners=3)  # analyze works in float64 whatever it is given
    W64 = W.double()
    D, interf, norms = dimensionality(W64), interference(W64), feature_norms(W64)
    for g in gs:
        assert g.frobenius_sq == pytest.approx(float(frobenius_sq(W64)[g.index]))
        assert [f.dimensionality for f in g.features] == pytest.approx(D[g.index].tolist())
        assert [f.interference for f in g.features] == pytest.approx(interf[g.index].tolist())
        assert [f.norm for f in g.features] == pytest.approx(norms[g.index].tolist())
        for f in g.features:
            alone = overlap_partners(W[g.index], f.index, k=3)
            assert [p.index for p in f.partners] == [p.index for p in alone]
            assert [p.dot for p in f.partners] == pytest.approx([p.dot for p in alone])
    assert np.isfinite([f.dimensionality for g in gs for f in g.features]).all()
