"""Helper code released to students together with the notebooks of the cnn_rnn assignment.

Modules:
    gradcheck: numerical gradients by centred differences and the relative error, to test
        backward passes. Uses numpy only.
    data: small data sets generated on the fly (digit images, sequence recall tasks).
    training: models, losses and optimizers around the notebooks' layers, and the pretrained weights.

Importing the package imports none of its modules, so ``from coursekit.gradcheck import
numerical_gradient`` works without the dependencies of the others. The notebooks import the
package from the folder they are in, so keep the coursekit folder next to them.
"""
