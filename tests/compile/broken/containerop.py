from kfp import dsl


@dsl.pipeline(name="containerop")
def containerop(msg: str = "hi") -> None:
    dsl.ContainerOp(name="echo", image="alpine", command=["echo", msg])
