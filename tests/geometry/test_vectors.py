import torch

from any4d.geometry.vectors import cross, norm


def test_cross_and_norm_match_torch_linalg_along_any_dim():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    b = torch.randn(2, 3, 1, 5, generator=g, dtype=torch.float64)  # broadcasts
    torch.testing.assert_close(cross(a, b, dim=1), torch.linalg.cross(a, b, dim=1))
    torch.testing.assert_close(norm(a, dim=1), torch.linalg.vector_norm(a, dim=1))
    torch.testing.assert_close(norm(a, dim=1, keepdim=True), a.norm(dim=1, keepdim=True))
    c = torch.randn(7, 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(cross(c, c.flip(0)), torch.linalg.cross(c, c.flip(0)))
