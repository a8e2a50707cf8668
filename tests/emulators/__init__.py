"""Local HTTP emulators of the outside systems, for tests and the demo.

Each speaks the real wire protocol over loopback HTTP, so releasegate is pointed at them
only through the standard variables (GITHUB_API_URL, AWS_ENDPOINT_URL, KUBECONFIG, PATH).
"""
