"""pipeline.backends.chat_formats: the prompt formats and guessing one."""

from __future__ import annotations

from pipeline.backends.chat_formats import FORMATS, guess_format


def test_formats_and_guesses() -> None:
    assert guess_format("gemma-3-270m-q4_k_m.gguf", "<|im_start|>") == "gemma"
    assert guess_format("SmolLM2-135M-Instruct.Q4_1") == "chatml"
    assert guess_format("llava-v1.5-7b") == "llava"
    assert guess_format("", "{{ '[INST]' }}") == "mistral"
    assert guess_format("mystery") == "chatml"
    assert FORMATS["llava"].wrap("Describe.", "Sys") == "Sys\n### User: Describe.\n### Assistant:"
