// Package layout holds the test of the import rule the README states:
// cmd → app → feature packages → model, with no feature package importing
// another (checker's use of probe excepted).
package layout
