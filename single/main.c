/* The single-file pyinit's entry point: a static CPython started with an isolated configuration
 * that runs the frozen _pyinit_single module, which runs pyinit.
 *
 * Every Python module pyinit needs is frozen into this executable (frozen.c, made by
 * single/freeze.py), so nothing is read from the filesystem: no sys.path, no /proc/self/exe, no
 * need to know where the file was mounted or under which name it was started.
 *
 * The configuration is the one of `python3 -I -S` with the parts the workload owns left alone:
 * - PYTHON* variables are the workload's: ignored (use_environment=0), and never touched.
 * - nothing is written into the environment: no locale coercion (PEP 538 would set LC_CTYPE);
 *   UTF-8 mode instead, which is what the coerced C locale gives the source install.
 * - argv is sys.argv as given, argv[0] included (no option parsing: every option is pyinit's).
 * - signal handlers and stdio as in a plain `python3` (the source install runs on one).
 */
#include <Python.h>

extern const struct _frozen pyinit_frozen_modules[];

static int fail(PyConfig *config, PyStatus status)
{
    PyConfig_Clear(config);
    if (PyStatus_IsExit(status))
        return status.exitcode;
    Py_ExitStatusException(status); /* prints the error and exits 1 */
    return 1;
}

int main(int argc, char **argv)
{
    PyImport_FrozenModules = pyinit_frozen_modules;

    PyPreConfig preconfig;
    PyPreConfig_InitIsolatedConfig(&preconfig);
    preconfig.utf8_mode = 1;
    PyStatus status = Py_PreInitialize(&preconfig);
    if (PyStatus_Exception(status))
        Py_ExitStatusException(status);

    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    config.write_bytecode = 0;
    config.install_signal_handlers = 1;
    config.configure_c_stdio = 1;
    config.use_frozen_modules = 1;
    config.module_search_paths_set = 1; /* empty: frozen and built-in modules only */

    status = PyConfig_SetBytesArgv(&config, argc, argv);
    if (PyStatus_Exception(status))
        return fail(&config, status);
    status = PyConfig_SetString(&config, &config.run_command,
                                L"from _pyinit_single import main\nmain()\n");
    if (PyStatus_Exception(status))
        return fail(&config, status);
    status = Py_InitializeFromConfig(&config);
    if (PyStatus_Exception(status))
        return fail(&config, status);
    PyConfig_Clear(&config);
    return Py_RunMain();
}
