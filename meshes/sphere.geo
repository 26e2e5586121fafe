// Unit ball (radius 1, centre 0): 3-D sample domain for llgfem.
// Lengths are dimensionless (unit radius); use `scale` in [domain] for physical units,
// e.g. scale = 0.01 for a 1 cm radius (metres).
// Physical groups: volume "domain" = cell tag 1, surface "boundary" = facet tag 1.
// Regenerate: gmsh -3 -format msh41 sphere.geo -o sphere.msh   (or python meshes/generate.py)
SetFactory("OpenCASCADE");
h = 0.13;
Sphere(1) = {0, 0, 0, 1.0};
Physical Volume("domain", 1) = {1};
Physical Surface("boundary", 1) = {1};
Mesh.MeshSizeMin = h;
Mesh.MeshSizeMax = h;
