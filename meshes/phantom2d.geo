// Two concentration phantoms in a square field of view [-1, 1]^2 (2-D sample for llgfem).
// Lengths are dimensionless (half-width 1); use `scale` in [domain] for physical units,
// e.g. scale = 0.01 for a 2 cm x 2 cm field of view (metres).
// Cell tags:  1 "background", 2 "phantom_a" (disk, centre (-0.4, 0), radius 0.25),
//             3 "phantom_b" (ellipse, centre (0.4, 0.1), semi-axes 0.3 x 0.15).
// Facet tags: 1 "boundary" (outer square), 2 "interface_a", 3 "interface_b".
// Regenerate: gmsh -2 -format msh41 phantom2d.geo -o phantom2d.msh
SetFactory("OpenCASCADE");
h = 0.07;
Rectangle(1) = {-1, -1, 0, 2, 2};
Disk(2) = {-0.4, 0, 0, 0.25};
Disk(3) = {0.4, 0.1, 0, 0.3, 0.15};
BooleanFragments{ Surface{1}; Delete; }{ Surface{2, 3}; Delete; }
// After fragmenting: surfaces 2 and 3 are the inclusions, the rest is background.
inclusions[] = {2, 3};
all[] = Surface{:};
background[] = all[];
background[] -= inclusions[];
Physical Surface("background", 1) = {background[]};
Physical Surface("phantom_a", 2) = {2};
Physical Surface("phantom_b", 3) = {3};
Physical Curve("boundary", 1) = CombinedBoundary{ Surface{all[]}; };
Physical Curve("interface_a", 2) = Boundary{ Surface{2}; };
Physical Curve("interface_b", 3) = Boundary{ Surface{3}; };
Mesh.MeshSizeMin = h;
Mesh.MeshSizeMax = h;
