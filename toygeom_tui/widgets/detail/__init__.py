"""What the instance detail draws: feature table, partners, WᵀW heatmap, feature vectors and
the D_i histogram."""
