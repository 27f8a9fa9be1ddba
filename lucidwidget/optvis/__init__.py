"""The optimisation engine: parameterisations, transforms, objectives, optimizers and the render loop."""

from lucidwidget._tf_startup import import_backend

import_backend()  # before any submodule: TensorFlow (the default backend) loads without its start-up log lines
