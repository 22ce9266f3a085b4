/* hello - print the arguments and the environment, exit 0. */
#include <stdio.h>

extern char **environ;

int main(int argc, char **argv)
{
    printf("hello from %s\n", argv[0]);
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=<%s>\n", i, argv[i]);
    for (int i = 0; environ[i]; i++)
        printf("env[%d]=<%s>\n", i, environ[i]);
    return 0;
}
