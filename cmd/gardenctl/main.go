// main.go is the program's entry point; everything it does is in run.

package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
