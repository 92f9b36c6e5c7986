result = "module_a"
