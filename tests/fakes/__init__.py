"""Fakes shared by the tests and the benchmarks (bench/ imports them; tests never import bench).

Fake servers, each a real HTTP server on 127.0.0.1 answering as the real one's captures show:
`llama` (llama.cpp's server, and koboldcpp's text API), `openai` (an OpenAI-compatible
server), `sd` (koboldcpp's A1111 image API), `llamafile` and `llamafile_cli` (stand-ins for
the llamafile program). `streaming` gives the text fakes their streamed answers (and hostile
streams), `pacing` their known latency (`prompt_token_seconds`, `token_seconds`: the sleeps
and the honest timings they report, for `pipe bench`). Fake files: `hostile_images`
(crafted headers that are small on disk and huge or slow to decode, and a server answering
with one), `photos` (Multi-Picture JPEGs as cameras write them). `pausing_cli` runs the
real CLI with the rename protocol slowed down.

Kept here, not in a package of their own, because they are test code first: what they must
answer is pinned by tests (tests/backends/test_sdapi.py replays koboldcpp's captures against
the fake). A change here is a change to every test and benchmark that uses it.
"""
