"""The optimisation engine: parameterisations, transforms, objectives, optimizers and the render loop."""

from lucidwidget._tf_startup import import_tensorflow

import_tensorflow()  # before any submodule: TensorFlow loads without its start-up log lines
