//go:build !linux

package main

import "os/exec"

// setDeathSignal does nothing outside Linux: the harness stops its processes itself.
func setDeathSignal(*exec.Cmd) {}
