// Package archtest holds the test of which gogoc package may import which
// (archtest_test.go, the rule table). It has no code of its own.
package archtest
