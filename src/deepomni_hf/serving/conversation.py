"""OpenAI chat messages → DeepOmni chat messages (the processor's format): `input_audio` parts are decoded and checked,
`developer` turns become system turns, and assistant audio sent back by id becomes that reply's codes and transcript."""

from ..processors.audio import WHISPER_SAMPLING_RATE
from .audio_io import decode_input_audio
from .audio_store import AudioStore
from .errors import bad_request
from .schemas import InputAudioPart, Message, TextPart


def to_deepomni_messages(messages: list[Message], store: AudioStore, max_audio_seconds: float) -> list[dict]:
    if messages[-1].role != "user":
        raise bad_request("The last message must be the user's turn to answer.", param="messages", code="invalid_messages")
    converted = []
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        role = "system" if message.role == "developer" else message.role
        parts = [TextPart(type="text", text=message.content)] if isinstance(message.content, str) else message.content
        items = []
        for part_index, part in enumerate(parts or []):
            if isinstance(part, InputAudioPart):
                if role != "user":
                    raise bad_request(
                        f"Only user turns may carry input_audio ({role} turn {index}); send an earlier spoken reply "
                        'back as {"role": "assistant", "audio": {"id": ...}}.',
                        param=f"{param}.content[{part_index}]",
                    )
                audio = part.input_audio
                waveform = decode_input_audio(
                    audio.data, audio.format, max_audio_seconds, param=f"{param}.content[{part_index}].input_audio"
                )
                items.append({"type": "audio", "audio": waveform, "sampling_rate": WHISPER_SAMPLING_RATE})
            elif part.text:
                items.append({"type": "text", "text": part.text})
        if message.audio is not None:
            if role != "assistant":
                raise bad_request("Only assistant turns may refer to audio by id.", param=f"{param}.audio")
            stored = store.get(message.audio.id)
            if stored is None:
                raise bad_request(
                    "Unknown or expired audio id: send the assistant turn's text as content instead.",
                    param=f"{param}.audio.id",
                    code="audio_not_found",
                )
            items = [{"type": "text", "text": stored.transcript}, {"type": "audio_codes", "codes": stored.codes, "voice": stored.voice}]
        if not items and role == "user":
            raise bad_request(f"User turn {index} is empty: send text or input_audio.", param=f"{param}.content")
        converted.append({"role": role, "content": items})
    return converted


__all__ = ["to_deepomni_messages"]
