"""Small NumPy test problems for the regularisation drivers (identical on every MPI rank)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from llgfem.regularisation.testing import MatrixOperator, integration_matrix


@dataclass
class IllPosed:
    """A x = y with A = (integration)^2 (singular values ~ 1/k^2) and noisy data."""

    F: MatrixOperator
    x_true: np.ndarray
    y: np.ndarray
    mu: float

    def noisy(self, rel: float, seed: int = 0) -> tuple[np.ndarray, float]:
        """Return y_delta with ||y_delta - y|| = delta = rel * ||y|| exactly."""
        noise = np.random.default_rng(seed).standard_normal(self.y.size)
        delta = rel * np.linalg.norm(self.y)
        return self.y + delta * noise / np.linalg.norm(noise), delta


@pytest.fixture
def ill_posed() -> IllPosed:
    n = 64
    A = integration_matrix(n) @ integration_matrix(n)
    t = (np.arange(n) + 0.5) / n
    x_true = 10.0 * t * (1.0 - t) * np.exp(t) + (t > 0.5)
    F = MatrixOperator(A)
    return IllPosed(F=F, x_true=x_true, y=A @ x_true, mu=1.0 / np.linalg.norm(A, 2) ** 2)
