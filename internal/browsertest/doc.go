// Package browsertest drives the page of examples/webserver in headless Chromium (the Debian
// package chromium) with chromedp: CIBA login with the binding code, the identity, the
// protected API, and QR login. Its tests carry the build tag browser; .ci/run runs them:
//
//	go test -tags browser -race ./...
//
// It is a module of its own so that chromedp stays out of the SDK's go.mod.
package browsertest
