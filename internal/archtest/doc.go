// Package archtest holds the test of which gogoc package may import which
// (archtest_test.go, the rule table) and the check that the import table
// of docs/architecture.md matches the code. It has no code of its own.
package archtest
