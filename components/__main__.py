"""Entry point of the component provider plugin (see PulumiPlugin.yaml and asya_pulumi/package/provider.py).

``pulumi package get-schema ./components`` prints the typed schema (asya_pulumi.package.schema); ``construct`` builds
the same components the Python API does, validating each spec with its model.
"""

import sys

from pulumi.provider import main

from asya_pulumi.package.provider import AsyaProvider

if __name__ == "__main__":
    main(AsyaProvider(), sys.argv[1:])
