"""DeepOmni pipelines, registered with transformers' `pipeline()` when `deepomni_hf` is imported."""

from .speech_to_speech import SpeechRecognitionPipeline, SpeechToSpeechPipeline, TextToSpeechPipeline


def register_pipelines() -> None:
    from transformers import AutoModelForMultimodalLM
    from transformers.pipelines import PIPELINE_REGISTRY

    for task, pipeline_class in (
        ("speech-to-speech", SpeechToSpeechPipeline),
        ("deepomni-asr", SpeechRecognitionPipeline),
        ("deepomni-tts", TextToSpeechPipeline),
    ):
        PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=pipeline_class, pt_model=AutoModelForMultimodalLM, type="multimodal")


__all__ = ["SpeechToSpeechPipeline", "SpeechRecognitionPipeline", "TextToSpeechPipeline", "register_pipelines"]
