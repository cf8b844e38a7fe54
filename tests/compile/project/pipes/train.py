import os

from helpers import GREETING
from kfp import components, dsl

greet = components.load_component_from_file(os.path.join(os.path.dirname(__file__), "greet.yaml"))


@dsl.pipeline(name="train")
def train_pipeline(text: str = GREETING) -> None:
    greet(text=text)
