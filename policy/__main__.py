"""imgpipe's production policy pack: `pulumi preview --policy-pack policy` from the project.

pulumi runs this file with this folder as the working directory and on sys.path (see
imgpipe_policy's docstring); the rules live in imgpipe_policy so the tests can run them too.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from imgpipe_policy import PACK_NAME, POLICIES

PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
