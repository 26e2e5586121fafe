"""Shared fixtures of the surrogate tests: one tiny FEM dataset per session (COMM_WORLD split)."""

from __future__ import annotations

import pytest

from llgfem.config import DomainConfig
from llgfem.surrogates.data import FEMDatasetSpec, generate_fem_dataset

TINY_DOMAIN = DomainConfig(kind="interval", lower=(0.0,), upper=(1.0,), n=(8,))
TINY_SPEC = FEMDatasetSpec(n_fields=20, initial="nonuniform", seed=3)


@pytest.fixture(scope="session")
def tiny_dataset():
    """20 fields, 31 time points on an 8-cell interval (fields shared out over the ranks)."""
    return generate_fem_dataset(TINY_SPEC, TINY_DOMAIN, T=6.0, n_t=31)
