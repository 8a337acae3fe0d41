// Package docstest holds the test that keeps the repository's Markdown
// self-contained: every relative link resolves to a file of the
// repository (and a #fragment to a heading of it), and nothing points
// outside the repository. It has no code of its own.
package docstest
