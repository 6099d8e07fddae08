// Noctis bedside enclosure, parametric. Render headless:
//   openscad -o base.stl -D 'part="base"' $(python -m hardware scad-args) enclosure.scad
// hardware/enclosure.py computes the layout below from enclosure.toml and passes it
// with -D; the defaults here only let the file open on its own in the OpenSCAD GUI.

part = "base";          // "base" | "lid" | "boards" (the boards, for checking fit)
wall = 2.4; floor_t = 4.0; lid_t = 2.0;
outer = [70, 60, 45];   // outer size of the base
radar_box = [10, 5.4, 8, 30, 8, 30];     // x, y, z, dx, dy, dz of the radar volume
window = [13, 13, 20, 24];                // x, z, width, height of the front-wall opening
devkit_box = [6, 20, 8, 55, 28, 14];
devkit_standoff = 4.0;
imu_box = [6, 50, 5, 21, 16, 5];
imu_standoff = 1.0;
cable = [35, 20, 9];                      // x, z, diameter through the back wall
boss = 3.0;                               // radar screw bosses on the front wall
$fn = 32;

module box(b) { translate([b[0], b[1], b[2]]) cube([b[3], b[4], b[5]]); }

module standoffs(b, h) {
    // Four posts under the board's corners, 2.5 mm in from its edges, with M2.5 pilot holes.
    for (x = [b[0] + 2.5, b[0] + b[3] - 2.5], y = [b[1] + 2.5, b[1] + b[4] - 2.5])
        translate([x, y, floor_t - 0.01]) difference() {
            cylinder(d = 5, h = h + 0.01);
            translate([0, 0, 0.5]) cylinder(d = 2.2, h = h + 1);
        }
}

module base() {
    difference() {
        cube(outer);
        translate([wall, wall, floor_t]) cube([outer[0] - 2 * wall, outer[1] - 2 * wall, outer[2]]);
        // The radar looks through an opening, not through plastic: 60 GHz is attenuated
        // and refracted by a wall whose thickness is not tuned to the wavelength.
        translate([window[0], -1, window[1]]) cube([window[2], wall + 2, window[3]]);
        translate([cable[0], outer[1] - wall - 1, cable[1]]) rotate([-90, 0, 0]) cylinder(d = cable[2], h = wall + 2);
        // Two slots in the floor for M4 screws or a strap into the bed frame.
        for (x = [outer[0] * 0.25, outer[0] * 0.75])
            translate([x, outer[1] / 2, -1]) hull() {
                translate([0, -4, 0]) cylinder(d = 4.4, h = floor_t + 2);
                translate([0, 4, 0]) cylinder(d = 4.4, h = floor_t + 2);
            }
    }
    standoffs(devkit_box, devkit_standoff);
    standoffs(imu_box, imu_standoff);
    // M2 screw bosses at the radar's corner holes (2.5 mm in), outside the antenna's beam.
    for (x = [radar_box[0] + 2.5, radar_box[0] + radar_box[3] - 2.5],
         z = [radar_box[2] + 2.5, radar_box[2] + radar_box[5] - 2.5])
        translate([x, wall - 0.01, z]) rotate([-90, 0, 0]) difference() {
            cylinder(d = 4.5, h = boss + 0.01);
            translate([0, 0, 0.8]) cylinder(d = 1.7, h = boss);
        }
}

module lid() {
    translate([0, 0, outer[2]]) union() {
        cube([outer[0], outer[1], lid_t]);
        translate([wall + 0.3, wall + 0.3, -3]) difference() {
            cube([outer[0] - 2 * wall - 0.6, outer[1] - 2 * wall - 0.6, 3]);
            translate([1.6, 1.6, -1]) cube([outer[0] - 2 * wall - 3.8, outer[1] - 2 * wall - 3.8, 5]);
        }
    }
}

if (part == "base") base();
if (part == "lid") lid();
if (part == "boards") { box(radar_box); box(devkit_box); box(imu_box); }
