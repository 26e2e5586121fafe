// Unit disk (radius 1, centre 0): 2-D sample domain for llgfem.
// Lengths are dimensionless (unit radius); use `scale` in [domain] for physical units,
// e.g. scale = 0.01 for a 1 cm radius (metres).
// Physical groups: surface "domain" = cell tag 1, curve "boundary" = facet tag 1.
// Regenerate: gmsh -2 -format msh41 disk.geo -o disk.msh   (or python meshes/generate.py)
SetFactory("OpenCASCADE");
h = 0.06;
Disk(1) = {0, 0, 0, 1.0};
Physical Surface("domain", 1) = {1};
Physical Curve("boundary", 1) = {1};
MeshSize{PointsOf{Surface{1};}} = h;
Mesh.MeshSizeMin = h;
Mesh.MeshSizeMax = h;
