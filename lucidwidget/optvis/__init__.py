"""The optimisation engine: parameterisations, transforms, objectives, optimizers and the render loop."""
