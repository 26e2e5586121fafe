"""Scanners, tracers and model-based system matrices in SI units (issue 13, SPEC §6).

* :mod:`~llgfem.scanner.fields` — selection gradient, drive channels (1-D sine, 2-D/3-D
  Lissajous), offset/focus field, sampling of one drive cycle, mixing orders;
* :mod:`~llgfem.scanner.tracer` — particle description and derived quantities;
* :mod:`~llgfem.scanner.receive` — receive channels: sensitivities and transfer functions;
* :mod:`~llgfem.scanner.models` — particle models (``MODELS`` registry: ``langevin``,
  ``brown_neel``);
* :mod:`~llgfem.scanner.system_matrix` — calibration grid, per-position signals split over
  MPI ranks, spectra, SNR;
* :mod:`~llgfem.scanner.reconstruct` — Kaczmarz with Tikhonov regularisation, phantoms.
"""
