// 3-D phantom for llgfem calibration at size (issue 16): unit ball field of view (radius 1,
// centre 0) with two tracer inclusions.  Lengths are dimensionless; use `scale` in [domain]
// for physical units.  h = 0.039 gives ~57k vertices (~170k P1 vector dofs).
// Physical groups: volume "background" = 1, "phantom_a" = 2 (ball radius 0.3 at (-0.4, 0, 0)),
// "phantom_b" = 3 (ellipsoid 0.3 x 0.2 x 0.15 at (0.35, 0.25, 0.1)); surface "boundary" = 1.
// Regenerate: gmsh -3 -format msh41 phantom3d.geo -o phantom3d.msh  (~20 MB; not committed:
// bench/scaling.py generates it on first use, single-threaded, so the file is reproducible)
SetFactory("OpenCASCADE");
h = 0.039;
Sphere(1) = {0, 0, 0, 1.0};
Sphere(2) = {-0.4, 0, 0, 0.3};
Sphere(3) = {0, 0, 0, 1.0};
Dilate {{0, 0, 0}, {0.3, 0.2, 0.15}} { Volume{3}; }
Translate {0.35, 0.25, 0.1} { Volume{3}; }
BooleanFragments{ Volume{1}; Delete; }{ Volume{2, 3}; Delete; }
a() = Volume In BoundingBox{-0.75, -0.35, -0.35, -0.05, 0.35, 0.35};
b() = Volume In BoundingBox{-0.3, -0.15, -0.1, 0.7, 0.65, 0.3};  // OCC boxes are loose
bg() = Volume{:};
bg() -= a();
bg() -= b();
Physical Volume("background", 1) = {bg()};
Physical Volume("phantom_a", 2) = {a()};
Physical Volume("phantom_b", 3) = {b()};
outer() = Surface In BoundingBox{-1.01, -1.01, -1.01, 1.01, 1.01, 1.01};
outer() -= Boundary{ Volume{a(), b()}; };
Physical Surface("boundary", 1) = {outer()};
Mesh.MeshSizeMin = h;
Mesh.MeshSizeMax = h;
