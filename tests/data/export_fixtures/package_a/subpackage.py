result = "package_a.subpackage"


class PackageASubpackageObject:
    pass


def leaf_function(a, b):
    return a + b
