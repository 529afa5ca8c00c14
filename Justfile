# pipe's everyday commands (just comes with the dev extra: pip install -e '.[dev]')

# Run the test suite (real-server tests skip unless a server is available)
test *args:
    python -m pytest {{args}}

# Lint and check formatting
lint:
    ruff check .
    ruff format --check .

# Format the code
fmt:
    ruff format .
    ruff check --fix .

# Run the benchmarks under bench/ and print their figures
bench *args:
    python -m bench {{args}}

# Everything CI runs (installs, builds the real servers, tests)
ci:
    bash .ci/run
